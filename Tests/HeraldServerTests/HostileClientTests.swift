import Foundation
import HeraldCore
import HeraldProtocol
import HeraldServer
import NIOCore
import Testing

/// The holes a hostile-input probe found (issue 12), each reproduced as the probe did it,
/// bounded and on loopback, and shown closed. The floods run one at a time, on their own
/// event loop, so that they do not stall the other suites' servers.
@Suite(.serialized) struct HostileClientTests {
    static let upgrade = "GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    /// A masked client frame with any opcode (pings here).
    static func maskedFrame(opcode: UInt8, payload: [UInt8]) -> [UInt8] {
        precondition(payload.count < 126)
        let mask: [UInt8] = [0x0A, 0x0B, 0x0C, 0x0D]
        return [0x80 | opcode, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    }

    /// Writes `chunk` until the server stops taking it (a write waits a second) or `limit`
    /// bytes went out; returns how many did.
    static func flood(_ socket: RawTCP, with chunk: [UInt8], limit: Int) async -> Int {
        var written = 0
        while written < limit, await socket.write(chunk, within: .seconds(1)) {
            written += chunk.count
        }
        return written
    }

    /// Short timeouts, so that the connections the flood leaves stuck are closed within the test.
    static func shortTimeouts(_ configuration: inout ServerConfiguration) {
        configuration.webSocketPingIntervalSeconds = 1
        configuration.writeStallTimeoutSeconds = 2
        configuration.requestTimeoutSeconds = 2
    }

    static func waitUntil(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return await condition()
    }

    /// Probe: 1,000,000 pings on an upgraded socket that never reads took RSS from 72 to
    /// 322 MB. Now reading stops once the pongs fill the socket: the client cannot even send
    /// most of its flood, the server holds at most `maxOutboundBufferBytes` for it, and the
    /// stuck connection is closed.
    @Test func aPingFloodThatIsNeverReadIsNotBuffered() async throws {
        let ping = Self.maskedFrame(opcode: 0x9, payload: Array(repeating: 0x70, count: 125))
        try await Self.floodWithoutReading(
            after: Array(Self.upgrade.utf8), chunk: Array([[UInt8]](repeating: ping, count: 1000).joined()),
            attempt: 100 * 1024 * 1024, mayTake: 30 * 1024 * 1024)
    }

    /// Probe: 300,000 pipelined `POST /bayeux` with `[]` on one connection that never reads,
    /// 95 → 273 MB. Same bound for HTTP responses. Each request here carries 50 connects for
    /// an unknown client, so that the replies fill the socket with fewer requests (the probe's
    /// `[]` needed tens of thousands, seconds of CPU in a debug build).
    @Test func pipelinedRequestsThatAreNeverReadAreNotBuffered() async throws {
        let body = "[" + Array(repeating: #"{"channel":"/meta/connect","clientId":"gone","connectionType":"long-polling"}"#, count: 50).joined(separator: ",") + "]"
        let request = Array("POST /bayeux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        try await Self.floodWithoutReading(
            after: [], chunk: Array([[UInt8]](repeating: request, count: 40).joined()),
            attempt: 60 * 1024 * 1024, mayTake: 20 * 1024 * 1024)
    }

    /// Sends `opening`, then `chunk` after `chunk` on a connection that never reads, until the
    /// server stops taking them or `attempt` bytes went out. The server must stop reading
    /// before `mayTake` bytes, hold at most `maxOutboundBufferBytes` of replies, and close the
    /// connection: at once past the outbound bound or by the stall timer, depending on how
    /// much one read burst took.
    static func floodWithoutReading(after opening: [UInt8], chunk: [UInt8], attempt: Int, mayTake: Int) async throws {
        try await withLiveServer(server: Self.shortTimeouts, group: LiveServer.floodGroup) { live in
            let socket = try await RawTCP.connect(port: live.port, autoRead: false, receiveBufferSize: 4096, on: LiveServer.floodGroup)
            if !opening.isEmpty { try await socket.write(opening) }
            let written = await Self.flood(socket, with: chunk, limit: attempt)
            let held = await live.server.bufferedOutboundBytes()
            #expect(written < mayTake, "the server kept reading: \(written) bytes taken")
            #expect(held <= ServerConfiguration().maxOutboundBufferBytes, "\(held) bytes of replies held for a client that reads nothing")
            #expect(await Self.waitUntil(8) { live.server.connectionCount == 0 }, "the stuck connection is closed")
            let tripped = live.broker.limits.count(.writeStall) + live.broker.limits.count(.outboundBytes)
            #expect(tripped == 1)
            await socket.close()
        }
    }

    /// Probe: publishes with a 60,000-character `id`, each answered with the id echoed. Now
    /// an id over 256 bytes is refused as an invalid parameter and never echoed.
    @Test func aLongIdIsRefusedAndNeverEchoed() async throws {
        try await withLiveServer { live in
            let client = try await RawBayeuxSocket.connect(port: live.port)
            let long = String(repeating: "i", count: 60_000)
            let replies = try await client.exchange([
                #"{"channel":"/a","clientId":"\#(client.clientId)","data":1,"id":"\#(long)"}"#,
                #"{"channel":"/a","clientId":"\#(client.clientId)","data":1,"id":\#(String(repeating: "7", count: 300))}"#,
                #"{"channel":"/a","clientId":"\#(client.clientId)","data":1,"id":"\#(String(repeating: "k", count: BayeuxMessage.maxIdBytes))"}"#,
            ], expectReplies: 3)
            #expect(replies[0]["error"]?.stringValue == "400:id:Invalid parameter")
            #expect(replies[0]["id"] == nil)
            #expect(replies[1]["error"]?.stringValue == "400:id:Invalid parameter")
            #expect(replies[1]["id"] == nil)
            #expect(replies[2]["successful"] == .bool(true), "an id of exactly the limit is echoed")
            #expect(replies[2]["id"]?.stringValue?.count == BayeuxMessage.maxIdBytes)
            #expect(live.broker.limits.count(.idBytes) == 2)
            await client.close()
        }
    }

    static func handshakes(_ count: Int) -> String {
        "[" + (0..<count).map { #"{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"\#($0)"}"# }.joined(separator: ",") + "]"
    }

    /// Probe: 205 POSTs of 1,000 batched handshakes made 199,996 sessions in two seconds. Now
    /// a batch makes one session at most, and one connection and one address are rate-limited.
    @Test func batchedHandshakesMakeOneSession() async throws {
        try await withLiveServer { live in
            let response = try await TestHTTP.postJSON(Self.handshakes(1000), port: live.port, on: LiveServer.group)
            let replies = try #require(try JSONParser.parse(response.text).arrayValue)
            #expect(replies.count == 1000)
            #expect(replies.filter { $0["successful"] == .bool(true) }.count == 1)
            #expect(replies[1]["error"]?.stringValue == "429:handshakes_per_batch:One handshake per message batch")
            #expect(replies[1]["advice"]?["reconnect"]?.stringValue == "handshake")
            #expect(live.broker.sessionCount == 1)
            #expect(live.broker.limits.count(.handshakesPerBatch) == 999)
        }
    }

    /// One WebSocket, 40 handshakes as fast as it can: a burst of 10 (twice the rate) and the
    /// rate after it. The bound allows for however long the test took.
    @Test func handshakesAreRateLimitedPerConnection() async throws {
        try await withLiveServer(server: { $0.handshakesPerSecondPerConnection = 5 }) { live in
            let socket = try await TestWebSocket.connect(port: live.port, on: LiveServer.group)
            var admitted = 0
            var refused = 0
            let started = Date()
            for _ in 0..<40 {
                try await socket.send(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]"#)
                let reply = try #require(try JSONParser.parse(try await socket.receive()).arrayValue?.first)
                if reply["successful"] == .bool(true) {
                    admitted += 1
                } else {
                    #expect(reply["error"]?.stringValue == "429:handshake_rate_connection:Too many handshakes")
                    #expect(reply["advice"]?["reconnect"]?.stringValue == "handshake")
                    refused += 1
                }
            }
            let allowed = 10 + Int(Date().timeIntervalSince(started) * 5) + 1
            #expect(admitted >= 10 && admitted <= allowed, "\(admitted) admitted, at most \(allowed) allowed")
            #expect(live.broker.limits.count(.handshakeRateConnection) == refused)
            await socket.close()
        }
    }

    /// Many connections from one address (loopback counted here): the address's bucket runs
    /// out whatever the connections' own buckets say.
    @Test func handshakesAreRateLimitedPerAddress() async throws {
        try await withLiveServer(server: {
            $0.handshakesPerSecondPerIP = 1
            $0.rateLimitLoopback = true
        }) { live in
            var admitted = 0
            var refused = 0
            let started = Date()
            for _ in 0..<20 {
                let response = try await TestHTTP.postJSON(Self.handshakes(1), port: live.port, on: LiveServer.group)
                let reply = try #require(try JSONParser.parse(response.text).arrayValue?.first)
                if reply["successful"] == .bool(true) {
                    admitted += 1
                } else {
                    #expect(reply["error"]?.stringValue == "429:handshake_rate_ip:Too many handshakes")
                    refused += 1
                }
            }
            let allowed = 2 + Int(Date().timeIntervalSince(started)) + 1
            #expect(admitted >= 2 && admitted <= allowed, "\(admitted) admitted, at most \(allowed) allowed")
            #expect(live.broker.limits.count(.handshakeRateIP) == refused)
        }
    }

    /// Past `maxConnectionsPerIP` from one address (loopback counted here) and past
    /// `maxConnections` in all, new connections are closed as they come; closing one makes room.
    @Test func connectionsAreLimitedPerAddressAndInTotal() async throws {
        try await withLiveServer(server: {
            $0.maxConnectionsPerIP = 3
            $0.rateLimitLoopback = true
        }) { live in
            var open: [RawTCP] = []
            for _ in 0..<3 { open.append(try await RawTCP.connect(port: live.port, on: LiveServer.group)) }
            #expect(await Self.waitUntil(5) { live.server.connectionCount == 3 })
            let fourth = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            _ = try await fourth.readAll(until: .seconds(3))
            #expect(fourth.sawEOF, "the fourth connection from one address is closed")
            #expect(live.broker.limits.count(.connectionsPerIP) == 1)
            await open.removeFirst().close()
            #expect(await Self.waitUntil(5) { live.server.connectionCount == 2 })
            let again = try await TestHTTP.postJSON(Self.handshakes(1), port: live.port, on: LiveServer.group)
            #expect(try JSONParser.parse(again.text).arrayValue?.first?["successful"] == .bool(true), "a closed connection makes room")
            for socket in open { await socket.close() }
            await fourth.close()
        }
        try await withLiveServer(server: { $0.maxConnections = 2 }) { live in
            let first = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            let second = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            #expect(await Self.waitUntil(5) { live.server.connectionCount == 2 })
            let third = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            _ = try await third.readAll(until: .seconds(3))
            #expect(third.sawEOF)
            #expect(live.broker.limits.count(.connections) == 1)
            for socket in [first, second, third] { await socket.close() }
        }
    }

    /// Loopback is exempt from the per-address limit by default (a proxy on the same host).
    @Test func loopbackIsExemptFromTheAddressLimitByDefault() async throws {
        try await withLiveServer(server: { $0.handshakesPerSecondPerIP = 1 }) { live in
            for _ in 0..<10 {
                let response = try await TestHTTP.postJSON(Self.handshakes(1), port: live.port, on: LiveServer.group)
                #expect(try JSONParser.parse(response.text).arrayValue?.first?["successful"] == .bool(true))
            }
        }
    }

    /// Upgrades, sends `frames`, and returns the server's close frame: code and reason.
    static func closeFrame(after frames: [UInt8], port: Int) async throws -> (code: Int, reason: String)? {
        let socket = try await RawTCP.connect(port: port, on: LiveServer.group)
        try await socket.write(upgrade)
        try await socket.write(frames)
        let bytes = try await socket.readAll(until: .seconds(3))
        await socket.close()
        guard let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound else { return nil }
        guard let close = ServerFrames.parse(Array(bytes[headEnd...])).first(where: { $0.opcode == 0x8 }), close.payload.count >= 2 else { return nil }
        return (Int(close.payload[0]) << 8 | Int(close.payload[1]), String(decoding: close.payload.dropFirst(2), as: UTF8.self))
    }

    /// Probe: close frames with codes no endpoint may send were answered 1000. RFC 6455 §7.4
    /// makes them protocol errors (1002), as it does a 1-byte payload; a reason that is not
    /// UTF-8 is 1007. Sendable codes are echoed.
    @Test func closeFramesWithInvalidCodesAreProtocolErrors() async throws {
        try await withLiveServer { live in
            func close(_ payload: [UInt8]) -> [UInt8] { Self.maskedFrame(opcode: 0x8, payload: payload) }
            func code(_ n: Int) -> [UInt8] { [UInt8(n >> 8), UInt8(n & 0xFF)] }
            for invalid in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
                let reply = try await Self.closeFrame(after: close(code(invalid)), port: live.port)
                #expect(reply?.code == 1002, "\(invalid): \(String(describing: reply))")
                #expect(reply?.reason == "invalid close code \(invalid)")
            }
            for valid in [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
                let reply = try await Self.closeFrame(after: close(code(valid) + Array("bye".utf8)), port: live.port)
                #expect(reply?.code == valid, "\(valid): \(String(describing: reply))")
            }
            #expect(try await Self.closeFrame(after: close([]), port: live.port)?.code == 1000)
            let oneByte = try await Self.closeFrame(after: close([0x03]), port: live.port)
            #expect(oneByte?.code == 1002)
            #expect(oneByte?.reason == "close frame with a 1-byte payload")
            let badReason = try await Self.closeFrame(after: close(code(1000) + [0xC3, 0x28]), port: live.port)
            #expect(badReason?.code == 1007)
        }
    }

    /// Probe: a message in more than 1,024 fragments was closed with 1009 "message larger than
    /// 1048576 bytes", which it was not. The reason now names the fragment limit.
    @Test func tooManyFragmentsSaysSo() async throws {
        try await withLiveServer { live in
            var frames: [UInt8] = [0x01, 0x80 | 1, 0, 0, 0, 0, UInt8(ascii: "[")]   // text, not final, masked with a zero key
            for _ in 0..<1100 { frames += [0x00, 0x80 | 1, 0, 0, 0, 0, UInt8(ascii: " ")] }
            let reply = try await Self.closeFrame(after: frames, port: live.port)
            #expect(reply?.code == 1009)
            #expect(reply?.reason == "message in more than 1024 fragments")
            #expect(live.broker.limits.count(.batchBytes) == 1)
        }
    }

    /// Probe: `GET /bayeux` with no upgrade on a `Connection: close` request got two 400s.
    /// Every variant here gets exactly one response, and the connection is closed after it.
    @Test func aPlainGetGetsOneResponse() async throws {
        try await withLiveServer { live in
            let variants = [
                "GET /bayeux HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "GET /bayeux HTTP/1.1\r\nHost: x\r\nConnection: close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n",
                "GET /bayeux HTTP/1.0\r\nHost: x\r\n\r\n",
                // Pipelined behind a Connection: close request: never answered.
                "GET /bayeux HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /bayeux HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\n\r\nGET /bayeux HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
            for request in variants {
                for split in [false, true] {
                    let socket = try await RawTCP.connect(port: live.port, on: LiveServer.group)
                    if split {
                        // In two pieces, the second after the server saw the first.
                        let bytes = Array(request.utf8)
                        try await socket.write(Array(bytes[..<10]))
                        try await Task.sleep(for: .milliseconds(50))
                        try await socket.write(Array(bytes[10...]))
                    } else {
                        try await socket.write(request)
                    }
                    let response = String(decoding: try await socket.readAll(until: .seconds(3)), as: UTF8.self)
                    #expect(response.components(separatedBy: "HTTP/1.1 ").count == 2, "\(request) split=\(split): \(response)")
                    #expect(response.hasPrefix("HTTP/1.1 400"), "\(request): \(response)")
                    #expect(socket.sawEOF, "\(request): closed after its response")
                    await socket.close()
                }
            }
        }
    }
}
