import HeraldCore
import HeraldProtocol
import NIOCore
import NIOWebSocket
import Testing

/// Hostile input gets a clear error and nothing else: after every case the server still
/// serves a client that was connected before it.
@Suite struct RobustnessTests {
    /// A subscriber connected before the bad input, and a check that it still gets messages.
    struct Canary {
        let subscriber: RawBayeuxSocket
        let publisher: RawBayeuxSocket
        var sequence = 0

        static func make(port: Int) async throws -> Canary {
            let subscriber = try await RawBayeuxSocket.connect(port: port)
            _ = try await subscriber.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(subscriber.clientId)","subscription":"/canary","id":"s"}"#], expectReplies: 1)
            return Canary(subscriber: subscriber, publisher: try await RawBayeuxSocket.connect(port: port))
        }

        mutating func expectHealthy(_ comment: Comment) async throws {
            sequence += 1
            let replies = try await publisher.exchange([#"{"channel":"/canary","clientId":"\#(publisher.clientId)","data":\#(sequence),"id":"c\#(sequence)"}"#], expectReplies: 1)
            #expect(replies.first?["successful"] == .bool(true), comment)
            let events = try await subscriber.events(1)
            #expect(events.first?["data"] == .number(String(sequence)), comment)
        }
    }

    static func limits(_ c: inout BrokerConfiguration) {
        c.maxBatchBytes = 64 * 1024
        c.maxMessageBytes = 16 * 1024
        c.maxMessagesPerBatch = 100
    }

    @Test func webSocketBadInputClosesWithTheRightCode() async throws {
        try await withLiveServer(broker: Self.limits) { live in
            var canary = try await Canary.make(port: live.port)
            let cases: [(String, WebSocketErrorCode, (TestWebSocket) async throws -> Void)] = [
                ("not JSON", .dataInconsistentWithMessage, { try await $0.send("hello there") }),
                ("truncated JSON", .dataInconsistentWithMessage, { try await $0.send(#"[{"channel":"/meta/handshake""#) }),
                ("JSON that is not messages", .dataInconsistentWithMessage, { try await $0.send("[1,2]") }),
                ("a bare string", .dataInconsistentWithMessage, { try await $0.send("\"hi\"") }),
                ("invalid UTF-8", .dataInconsistentWithMessage, { ws in
                    var bytes = ByteBuffer(string: #"[{"channel":"/a","data":""#)
                    bytes.writeBytes([0xC3, 0x28])
                    bytes.writeString(#""}]"#)
                    try await ws.send(frame: WebSocketFrame(fin: true, opcode: .text, data: bytes))
                }),
                ("binary frame", .unacceptableData, { try await $0.send(frame: WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(string: "[]"))) }),
                ("frame over maxBatchBytes", .messageTooLarge, { ws in
                    try await ws.send("[" + String(repeating: " ", count: 70 * 1024) + "]")
                }),
                ("fragments over maxBatchBytes", .messageTooLarge, { ws in
                    let chunk = ByteBuffer(string: String(repeating: " ", count: 20 * 1024))
                    try await ws.send(frame: WebSocketFrame(fin: false, opcode: .text, data: ByteBuffer(string: "[")))
                    for _ in 0..<4 { try await ws.send(frame: WebSocketFrame(fin: false, opcode: .continuation, data: chunk)) }
                    try await ws.send(frame: WebSocketFrame(fin: true, opcode: .continuation, data: ByteBuffer(string: "]")))
                }),
                ("too many messages", .messageTooLarge, { ws in
                    try await ws.send("[" + Array(repeating: #"{"channel":"/meta/handshake"}"#, count: 101).joined(separator: ",") + "]")
                }),
                ("deep nesting", .dataInconsistentWithMessage, { ws in
                    try await ws.send(#"[{"channel":"/a","data":"# + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}]")
                }),
            ]
            for (name, code, send) in cases {
                let ws = try await TestWebSocket.connect(port: live.port, on: LiveServer.group)
                // The server may close while the rest of the input is still being sent.
                try? await send(ws)
                let closed = try await ws.waitForClose()
                #expect(closed == code, "\(name)")
                try await canary.expectHealthy("after \(name)")
            }
            #expect(live.broker.sessionCount == 2)
        }
    }

    @Test func bayeuxErrorsLeaveTheConnectionUsable() async throws {
        try await withLiveServer(broker: Self.limits) { live in
            var canary = try await Canary.make(port: live.port)
            let client = try await RawBayeuxSocket.connect(port: live.port)
            let cid = client.clientId
            let cases: [(String, String)] = [
                (#"{"channel":"/meta/connect","connectionType":"websocket","id":"1"}"#, "402::Unknown client"),
                (#"{"channel":"/meta/subscribe","clientId":"\#(cid)","id":"2"}"#, "402:subscription:Missing required parameter"),
                (#"{"clientId":"\#(cid)","data":1,"id":"3"}"#, "402:channel:Missing required parameter"),
                (#"{"channel":"no-slash","clientId":"\#(cid)","data":1,"id":"4"}"#, "405:no-slash:Invalid channel"),
                (#"{"channel":"/meta/foo","clientId":"\#(cid)","data":1,"id":"5"}"#, "403:/meta/foo:Forbidden channel"),
                (#"{"channel":"/a/**","clientId":"\#(cid)","data":1,"id":"6"}"#, "405:/a/**:Invalid channel"),
                (#"{"channel":"/a","clientId":"\#(cid)","data":"\#(String(repeating: "x", count: 17 * 1024))","id":"7"}"#, "413:16384:Message too large"),
                (#"{"channel":"/meta/subscribe/x","clientId":"\#(cid)","subscription":"/canary","id":"8"}"#, "403:/meta/subscribe/x:Forbidden channel"),
                (#"{"channel":"/meta/subscribe","clientId":"\#(cid)","subscription":42,"id":"9"}"#, "402:subscription:Missing required parameter"),
                (#"{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":"websocket","id":"10"}"#, "400:supportedConnectionTypes:Invalid parameter"),
            ]
            for (message, error) in cases {
                let reply = try await client.exchange([message], expectReplies: 1)
                #expect(reply.first?["successful"] == .bool(false), "\(message)")
                #expect(reply.first?["error"] == .string(error), "\(message)")
                try await canary.expectHealthy("after \(error)")
            }
            // The GHSA-qpg4-4w7w-2mq5 message did not subscribe the client to /canary.
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await client.exchange([#"{"channel":"/meta/connect","clientId":"\#(cid)","connectionType":"websocket","id":"x","advice":{"timeout":0}}"#], expectReplies: 1).count == 1)
            #expect(live.broker.session(id: cid)?.subscriptions == [])
            await client.close()
        }
    }

    @Test func httpBadInput() async throws {
        try await withLiveServer(broker: Self.limits) { live in
            var canary = try await Canary.make(port: live.port)
            let group = LiveServer.group

            let notJSON = try await TestHTTP.postJSON("{nope", port: live.port, on: group)
            #expect(notJSON.status == 400)
            #expect(notJSON.text.hasPrefix("Bad request: invalid JSON"))
            try await canary.expectHealthy("after non-JSON POST")

            let shape = try await TestHTTP.postJSON("[\"x\"]", port: live.port, on: group)
            #expect(shape.status == 400)
            try await canary.expectHealthy("after wrong-shape POST")

            let big = try await TestHTTP.postJSON("[" + String(repeating: " ", count: 70 * 1024) + "]", port: live.port, on: group)
            #expect(big.status == 413)
            try await canary.expectHealthy("after oversized POST")

            let many = try await TestHTTP.postJSON("[" + Array(repeating: "{}", count: 101).joined(separator: ",") + "]", port: live.port, on: group)
            #expect(many.status == 413)

            let declared = try await RawTCP.connect(port: live.port, on: group)
            try await declared.write("POST /bayeux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n[")
            let declaredReply = String(decoding: try await declared.readAll(until: .seconds(2)), as: UTF8.self)
            #expect(declaredReply.hasPrefix("HTTP/1.1 413"))
            #expect(declared.sawEOF)
            try await canary.expectHealthy("after declared 10 MB body")

            let chunked = try await RawTCP.connect(port: live.port, on: group)
            try await chunked.write("POST /bayeux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            let piece = String(repeating: " ", count: 16 * 1024)
            for _ in 0..<5 { try? await chunked.write(String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n") }
            let chunkedReply = String(decoding: try await chunked.readAll(until: .seconds(2)), as: UTF8.self)
            #expect(chunkedReply.hasPrefix("HTTP/1.1 413"))
            try await canary.expectHealthy("after chunked body over the limit")

            let garbage = try await RawTCP.connect(port: live.port, on: group)
            try await garbage.write("\u{01}\u{02}GARBAGE\r\n\r\n")
            let garbageReply = String(decoding: try await garbage.readAll(until: .seconds(2)), as: UTF8.self)
            #expect(garbageReply.hasPrefix("HTTP/1.1 400"))
            try await canary.expectHealthy("after a garbage request line")

            let headers = try await RawTCP.connect(port: live.port, on: group)
            try await headers.write("GET /bayeux HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 200 * 1024) + "\r\n\r\n")
            let headersReply = String(decoding: try await headers.readAll(until: .seconds(2)), as: UTF8.self)
            #expect(headersReply.hasPrefix("HTTP/1.1 4"))
            try await canary.expectHealthy("after 200 KB of headers")

            let method = try await TestHTTP.request("PUT", port: live.port, path: "/bayeux", body: Array("[]".utf8), on: group)
            #expect(method.status == 405)

            let badCallback = try await TestHTTP.request("GET", port: live.port, path: "/bayeux?message=%5B%5D&jsonp=a%3Bb", on: group)
            #expect(badCallback.status == 400)
            try await canary.expectHealthy("at the end")
        }
    }

    /// HTTP connections must send a whole request within `requestTimeoutSeconds` of their
    /// accept: silent and trickling connections are closed; WebSockets are not affected.
    /// The timeout is 2 s, so that a test task stalled by a loaded machine does not look like
    /// a server that closed too early.
    @Test func requestTimeoutClosesSilentAndTricklingConnections() async throws {
        try await withLiveServer(server: { $0.requestTimeoutSeconds = 2 }) { live in
            var canary = try await Canary.make(port: live.port)
            let group = LiveServer.group
            let started = ContinuousClock.now

            let silent = try await RawTCP.connect(port: live.port, on: group)
            try await Task.sleep(for: .milliseconds(1000))
            #expect(!silent.sawEOF, "closed before the timeout")

            // A head trickled a byte at a time: bytes keep coming, the request never completes.
            let trickle = try await RawTCP.connect(port: live.port, on: group)
            var trickleClosed = false
            let head = "GET /bayeux?message=%5B%5D&jsonp=cb HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "s", count: 200)
            for byte in Array(head.utf8) {
                guard (try? await trickle.write([byte])) != nil, !trickle.sawEOF else {
                    trickleClosed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(trickleClosed, "a trickled head was not cut off")

            _ = try await silent.readAll(until: .seconds(4))
            #expect(silent.sawEOF, "a silent connection was not closed")
            #expect(ContinuousClock.now - started < .seconds(9))

            // The canary's WebSockets have been idle for longer than the timeout.
            try await canary.expectHealthy("after the request timeouts")
        }
    }

    /// The request timeout restarts from each response, and a request being handled is not
    /// waiting: a long-poll connect held for longer than the timeout is answered on its
    /// keep-alive connection, which is then closed once it has been idle for the timeout.
    @Test func requestTimeoutSparesHeldConnectsAndClosesIdleKeepAlive() async throws {
        try await withLiveServer(broker: { $0.connectTimeoutMilliseconds = 5000 }, server: { $0.requestTimeoutSeconds = 2 }) { live in
            let poller = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            func post(_ json: String) async throws {
                try await poller.write("POST /bayeux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
            }
            /// One whole response: the head, then as many body bytes as it announces.
            func response() async throws -> String {
                var text = ""
                while true {
                    let chunk = try #require(try await poller.read(timeout: .seconds(10)), "closed before a whole response; so far: \(text)")
                    text += String(decoding: chunk, as: UTF8.self)
                    if let split = text.range(of: "\r\n\r\n"),
                       let length = text[..<split.lowerBound].firstMatch(of: /Content-Length: (\d+)/)?.1,
                       text[split.upperBound...].utf8.count >= Int(length)! {
                        return text
                    }
                }
            }
            try await post(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]"#)
            let handshake = try await response()
            let clientId = try #require(handshake.firstMatch(of: /"clientId":"([^"]+)"/)?.1)
            try await post(#"[{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"long-polling","id":"2","advice":{"timeout":0}}]"#)
            _ = try await response()
            let heldAt = ContinuousClock.now
            try await post(#"[{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"long-polling","id":"3"}]"#)
            let held = try await response()
            #expect(held.contains(#""id":"3""#))
            #expect(ContinuousClock.now - heldAt > .seconds(4), "the connect was not held for longer than the request timeout")
            _ = try await poller.readAll(until: .seconds(5))
            #expect(poller.sawEOF, "an idle keep-alive connection was not closed")
        }
    }

    /// A subscriber that stops reading is disconnected as a slow consumer once
    /// `maxPendingBytesPerSession` is queued for it; the other subscriber loses nothing.
    @Test func slowConsumerIsCutOffAndOthersLoseNothing() async throws {
        try await withLiveServer(
            // 1 MiB of slack for the fast one on a loaded machine; the slow one is sent 8 MB.
            broker: { $0.maxPendingBytesPerSession = 1024 * 1024 },
            server: { $0.writeBufferHighWaterMarkBytes = 64 * 1024; $0.writeBufferLowWaterMarkBytes = 16 * 1024 }
        ) { live in
            let fast = try await RawBayeuxSocket.connect(port: live.port)
            _ = try await fast.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(fast.clientId)","subscription":"/firehose","id":"s"}"#], expectReplies: 1)

            // The slow one speaks WebSocket by hand over a socket it then stops reading.
            let slow = try await RawTCP.connect(port: live.port, autoRead: false, receiveBufferSize: 4096, on: LiveServer.group)
            try await slow.write("GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            #expect(String(decoding: try await slow.read() ?? [], as: UTF8.self).hasPrefix("HTTP/1.1 101"))
            try await slow.write(ServerFrames.maskedTextFrame(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"1"}]"#))
            let handshake = String(decoding: try await slow.read() ?? [], as: UTF8.self)
            let clientId = try #require(handshake.firstMatch(of: /"clientId":"([0-9a-f]+)"/)?.1)
            try await slow.write(ServerFrames.maskedTextFrame(#"[{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"websocket","id":"2","advice":{"timeout":0}},{"channel":"/meta/subscribe","clientId":"\#(clientId)","subscription":"/firehose","id":"3"}]"#))
            _ = try await slow.read()
            #expect(live.broker.sessionCount == 2)

            let publisher = try await RawBayeuxSocket.connect(port: live.port)
            let pad = String(repeating: "p", count: 1000)
            let total = 8000
            let receiving = Task { try await fast.events(total, timeout: .seconds(30)) }
            for batch in 0..<(total / 50) {
                let messages = (0..<50).map { i in #"{"channel":"/firehose","clientId":"\#(publisher.clientId)","data":{"n":\#(batch * 50 + i),"pad":"\#(pad)"},"id":"\#(i)"}"# }
                _ = try await publisher.exchange(messages, expectReplies: 50)
            }
            let events = try await receiving.value
            #expect(events.map { $0["data"]?["n"]?.intValue } == (0..<total).map { $0 })
            #expect(live.broker.counters.slowConsumers.load(ordering: .relaxed) == 1)
            #expect(live.broker.session(id: String(clientId)) == nil)
            #expect(live.broker.sessionCount == 2)
            await slow.close()
            await publisher.close()
            await fast.close()
        }
    }
}
