@testable import HeraldServer
import HeraldCore
import HeraldProtocol
import NIOCore
import NIOWebSocket
import Testing

/// End-to-end tests against a real server on a loopback port, over WebSocket and
/// long-polling.
@Suite struct LiveTests {
    typealias Transport = BayeuxTestClient.Transport

    static let transportPairs: [(Transport, Transport)] = [
        (.websocket, .websocket), (.websocket, .longPolling), (.longPolling, .websocket), (.longPolling, .longPolling),
    ]

    @Test(arguments: transportPairs)
    func publishSubscribeAcrossTransports(subscriberTransport: Transport, publisherTransport: Transport) async throws {
        try await withLiveServer { live in
            let subscriber = BayeuxTestClient(port: live.port, transport: subscriberTransport)
            let publisher = BayeuxTestClient(port: live.port, transport: publisherTransport)
            try await subscriber.start()
            try await publisher.start()
            let sub = try await subscriber.subscribe("/chat/*")
            #expect(sub["successful"] == .bool(true))
            #expect(sub["subscription"] == .string("/chat/*"))
            for n in 0..<3 {
                let ack = try await publisher.publish("/chat/room", #"{"n":\#(n),"text":"h\u00e9 ☃","big":12345678901234567}"#)
                #expect(ack["successful"] == .bool(true))
            }
            let events = try await subscriber.waitForEvents(3)
            #expect(events.map { $0["data"]?["n"] } == [.number("0"), .number("1"), .number("2")])
            #expect(events[0]["data"]?["text"] == .string("hé ☃"))
            #expect(events[0]["data"]?["big"] == .number("12345678901234567"))
            #expect(events.allSatisfy { $0["id"] == nil && $0["clientId"] == nil && $0["channel"] == .string("/chat/room") })
            #expect(await publisher.events.isEmpty)
            await subscriber.stop()
            await publisher.stop()
        }
    }

    @Test(arguments: Transport.allCases)
    func wildcardsUnsubscribeAndDisconnect(transport: Transport) async throws {
        try await withLiveServer { live in
            let client = BayeuxTestClient(port: live.port, transport: transport)
            try await client.start()
            #expect(try await client.subscribe("/w/*")["successful"] == .bool(true))
            #expect(try await client.subscribe("/w/**")["successful"] == .bool(true))
            _ = try await client.publish("/w/a", "1")
            _ = try await client.publish("/w/a/b", "2")
            _ = try await client.publish("/wx", "3")
            let events = try await client.waitForEvents(2)
            try await Task.sleep(for: .milliseconds(100))
            #expect(await client.events.map { $0["data"] } == [.number("1"), .number("2")])
            #expect(events.count == 2)

            #expect(try await client.unsubscribe("/w/**")["successful"] == .bool(true))
            _ = try await client.publish("/w/a/b", "4")
            _ = try await client.publish("/w/c", "5")
            _ = try await client.waitForEvents(3)
            try await Task.sleep(for: .milliseconds(100))
            #expect(await client.events.map { $0["data"] } == [.number("1"), .number("2"), .number("5")])

            #expect(try await client.disconnect()["successful"] == .bool(true))
            #expect(live.broker.sessionCount == 0)
            let afterwards = try await client.publish("/w/c", "6")
            #expect(afterwards["error"] == .string("402::Unknown client"))
            await client.stop()
        }
    }

    @Test func sessionExpiresWhenTheClientStopsConnecting() async throws {
        let clock = SteppedClock()
        try await withLiveServer(clock: clock, broker: { $0.maxIntervalMilliseconds = 2_000 }) { live in
            let client = BayeuxTestClient(port: live.port, transport: .longPolling)
            let handshake = try await client.post([#"{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}"#])
            let clientId = handshake[0]["clientId"]!.stringValue!
            let connect = #"{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"long-polling","id":"2","advice":{"timeout":0}}"#
            let first = try await client.post([connect])[0]
            #expect(first["successful"] == .bool(true), "\(first.jsonText)")
            clock.advance(milliseconds: 1_999)
            try await Task.sleep(for: .milliseconds(300))
            #expect(live.broker.sessionCount == 1)
            // A connect renews the session.
            #expect(try await client.post([connect])[0]["successful"] == .bool(true))
            clock.advance(milliseconds: 1_999)
            try await Task.sleep(for: .milliseconds(300))
            #expect(live.broker.sessionCount == 1)
            clock.advance(milliseconds: 2)
            let deadline = ContinuousClock.now + .seconds(10)
            while live.broker.sessionCount > 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(live.broker.sessionCount == 0)
            let late = try await client.post([connect])[0]
            #expect(late["successful"] == .bool(false))
            #expect(late["error"] == .string("402::Unknown client"))
            #expect(late["advice"]?["reconnect"] == .string("handshake"))
        }
    }

    @Test func heldConnectIsAnsweredWhenItsTimeoutPasses() async throws {
        try await withLiveServer(broker: { $0.connectTimeoutMilliseconds = 300 }) { live in
            let client = BayeuxTestClient(port: live.port, transport: .websocket)
            try await client.start()
            try await Task.sleep(for: .milliseconds(1000))
            let replies = await client.connectReplies
            // The loop's connects were each held ~300 ms and answered successfully.
            #expect(replies.count >= 1, "\(replies.map(\.jsonText))")
            #expect(replies.allSatisfy { $0["successful"] == .bool(true) && $0["advice"]?["timeout"] == .number("300") })
            await client.stop()
        }
    }

    @Test func aThousandOrderedMessagesReachThreeSubscribers() async throws {
        try await withLiveServer { live in
            let subscribers = [
                BayeuxTestClient(port: live.port, transport: .websocket),
                BayeuxTestClient(port: live.port, transport: .longPolling),
                BayeuxTestClient(port: live.port, transport: .websocket),
            ]
            for subscriber in subscribers {
                try await subscriber.start()
                #expect(try await subscriber.subscribe("/ordered")["successful"] == .bool(true))
            }
            // The publisher batches 50 messages per frame, as CometD's client does.
            let publisher = try await RawBayeuxSocket.connect(port: live.port)
            for batch in 0..<20 {
                let messages = (0..<50).map { i in
                    #"{"channel":"/ordered","clientId":"\#(publisher.clientId)","data":{"seq":\#(batch * 50 + i)},"id":"p\#(batch * 50 + i)"}"#
                }
                let replies = try await publisher.exchange(messages, expectReplies: 50)
                #expect(replies.allSatisfy { $0["successful"] == .bool(true) })
            }
            for subscriber in subscribers {
                let events = try await subscriber.waitForEvents(1000, timeout: .seconds(20))
                #expect(events.count == 1000)
                #expect(events.map { $0["data"]?["seq"]?.intValue } == (0..<1000).map { $0 })
                await subscriber.stop()
            }
            await publisher.close()
        }
    }

    @Test func fiveHundredConcurrentSubscribers() async throws {
        try await withLiveServer { live in
            let count = 500
            let sockets = try await withThrowingTaskGroup(of: RawBayeuxSocket.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        let socket = try await RawBayeuxSocket.connect(port: live.port)
                        let reply = try await socket.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(socket.clientId)","subscription":"/crowd","id":"s"}"#], expectReplies: 1)
                        guard reply.first?["successful"] == .bool(true) else { throw BayeuxTestClient.Failure(description: "subscribe failed") }
                        return socket
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(sockets.count == count)
            #expect(live.broker.sessionCount == count)
            let publisher = try await RawBayeuxSocket.connect(port: live.port)
            let messages = (0..<10).map { #"{"channel":"/crowd","clientId":"\#(publisher.clientId)","data":\#($0),"id":"m\#($0)"}"# }
            _ = try await publisher.exchange(messages, expectReplies: 10)
            try await withThrowingTaskGroup(of: [JSONValue].self) { group in
                for socket in sockets {
                    group.addTask { try await socket.events(10) }
                }
                for try await events in group {
                    #expect(events.map { $0["data"] } == (0..<10).map { .number(String($0)) })
                }
            }
            for socket in sockets { await socket.close() }
            await publisher.close()
        }
    }

    /// Faye's and aiocometd's clients handshake over HTTP and then connect over WebSocket with
    /// the same clientId; a client may also move back to long-polling and find what was
    /// queued meanwhile.
    @Test func switchingTransportsWithinOneSession() async throws {
        try await withLiveServer { live in
            let ws = BayeuxTestClient(port: live.port, transport: .websocket)
            try await ws.start()
            let clientId = await ws.clientId
            #expect(try await ws.subscribe("/switch")["successful"] == .bool(true))
            await ws.stop()
            try await Task.sleep(for: .milliseconds(100))
            #expect(live.broker.session(id: clientId) != nil)

            let publisher = try await RawBayeuxSocket.connect(port: live.port)
            _ = try await publisher.exchange([#"{"channel":"/switch","clientId":"\#(publisher.clientId)","data":"while away","id":"1"}"#], expectReplies: 1)

            let http = BayeuxTestClient(port: live.port, transport: .longPolling)
            let reply = try await http.post([#"{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"long-polling","id":"9"}"#])
            #expect(reply.first?["successful"] == .bool(true))
            #expect(reply.dropFirst().map { $0["data"] } == [.string("while away")])
            await publisher.close()
        }
    }

    /// aiohttp (aiocometd) sends its WebSocket upgrade on the keep-alive connection of its
    /// handshake POST; NIO's upgrade handler alone only upgrades a connection's first request.
    @Test func upgradeOnAKeepAliveConnectionAfterAPost() async throws {
        try await withLiveServer { live in
            let tcp = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            let body = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"1"}]"#
            try await tcp.write("POST /bayeux HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            var response = ""
            while !response.contains(#""successful":true"#) {
                guard let chunk = try await tcp.read() else { break }
                response += String(decoding: chunk, as: UTF8.self)
            }
            #expect(response.hasPrefix("HTTP/1.1 200 OK"))
            try await tcp.write("GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            let upgrade = String(decoding: try await tcp.read() ?? [], as: UTF8.self)
            #expect(upgrade.hasPrefix("HTTP/1.1 101"))
            #expect(upgrade.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
            await tcp.close()
        }
    }

    /// A client that sends its first frame right behind the upgrade request, in the same
    /// packet, gets it processed: the bytes after the request go to the WebSocket decoder.
    @Test func frameInTheSamePacketAsTheUpgrade() async throws {
        try await withLiveServer { live in
            let tcp = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            let handshake = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"7"}]"#
            let request = Array("GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8)
            try await tcp.write(request + ServerFrames.maskedTextFrame(handshake))
            var bytes: [UInt8] = []
            while !String(decoding: bytes, as: UTF8.self).contains(#""successful":true"#) {
                guard let chunk = try await tcp.read() else { break }
                bytes += chunk
            }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
            #expect(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
            let end = try #require(text.range(of: "\r\n\r\n"))
            let frames = ServerFrames.parse(Array(bytes[text.utf8.distance(from: text.startIndex, to: end.upperBound)...]))
            #expect(frames.first?.opcode == 0x1)
            let reply = String(decoding: frames.first?.payload ?? [], as: UTF8.self)
            #expect(reply.contains(#""id":"7""#) && reply.contains(#""clientId""#))
            await tcp.close()
        }
    }

    /// Accepted sockets have Nagle off (inherited from the listener on Linux), and the
    /// per-connection options are in place.
    @Test func acceptedSocketOptions() async throws {
        try await withLiveServer { live in
            let tcp = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            var accepted: (any Channel)?
            for _ in 0..<100 where accepted == nil {
                accepted = live.server.state.withLock { $0.connections.values.first }
                if accepted == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let channel = try #require(accepted)
            #expect(try await channel.getOption(.tcpOption(.tcp_nodelay)).get() == 1)
            #expect(try await channel.getOption(.maxMessagesPerRead).get() == 16)
            let watermark = try await channel.getOption(.writeBufferWaterMark).get()
            #expect(watermark.high == live.server.configuration.writeBufferHighWaterMarkBytes)
            await tcp.close()
        }
    }

    /// An upgrade request that arrives in pieces, and a long-polling request as the first
    /// request, both work: the first request is read whole before the pipeline is chosen.
    @Test func firstRequestInPiecesAndPlainHTTPFirst() async throws {
        try await withLiveServer { live in
            let tcp = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            let request = "GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            for piece in [request.prefix(2), request.dropFirst(2).prefix(40), request.dropFirst(42)] {
                try await tcp.write(String(piece))
                try await Task.sleep(for: .milliseconds(20))
            }
            let response = String(decoding: try await tcp.read() ?? [], as: UTF8.self)
            #expect(response.hasPrefix("HTTP/1.1 101"))
            #expect(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
            await tcp.close()

            let handshake = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]"#
            let reply = try await TestHTTP.postJSON(handshake, port: live.port, on: LiveServer.group)
            #expect(reply.status == 200)
            #expect(try reply.json().first?["successful"] as? Bool == true)

            // Not HTTP at all: the HTTP decoder answers 400 and closes.
            let junk = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            try await junk.write("\u{16}\u{03}\u{01} not http\r\n\r\n")
            #expect(String(decoding: try await junk.readAll(until: .seconds(2)), as: UTF8.self).hasPrefix("HTTP/1.1 400"))
            await junk.close()
        }
    }

    /// Refused upgrades are plain HTTP errors that say what is wrong (RFC 6455 §4.2.1, §4.4).
    @Test func refusedUpgrades() async throws {
        try await withLiveServer { live in
            func attempt(_ headers: String) async throws -> String {
                let tcp = try await RawTCP.connect(port: live.port, on: LiveServer.group)
                try await tcp.write("GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\(headers)\r\n")
                let response = String(decoding: try await tcp.readAll(until: .seconds(10)), as: UTF8.self)
                await tcp.close()
                return response
            }
            let oldVersion = try await attempt("Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n")
            #expect(oldVersion.hasPrefix("HTTP/1.1 426"))
            #expect(oldVersion.lowercased().contains("sec-websocket-version: 13\r\n"))
            let twoKeys = try await attempt("Connection: Upgrade\r\nSec-WebSocket-Key: a2V5MQ==\r\nSec-WebSocket-Key: a2V5Mg==\r\nSec-WebSocket-Version: 13\r\n")
            #expect(twoKeys.hasPrefix("HTTP/1.1 400"))
            let noConnectionToken = try await attempt("Connection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
            #expect(noConnectionToken.hasPrefix("HTTP/1.1 400"))
            #expect(noConnectionToken.contains("Connection: Upgrade"))
        }
    }

    /// An idle WebSocket gets pings; one that never answers is closed with 1001.
    @Test func keepalivePingsAndClosesSilentSockets() async throws {
        try await withLiveServer(server: { $0.webSocketPingIntervalSeconds = 1 }) { live in
            let tcp = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            try await tcp.write("GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            #expect(String(decoding: try await tcp.read() ?? [], as: UTF8.self).hasPrefix("HTTP/1.1 101"))
            let start = ContinuousClock.now
            let frames = try await tcp.readAll(until: .seconds(10))
            let elapsed = ContinuousClock.now - start
            // Unmasked server frames: ping is 0x89 0x00; close is 0x88, length, then 1001 (0x03E9).
            #expect(frames.starts(with: [0x89, 0x00]))
            let closeAt = try #require(frames.firstIndex(of: 0x88))
            #expect(Array(frames[(closeAt + 2)..<(closeAt + 4)]) == [0x03, 0xE9])
            #expect(tcp.sawEOF)
            // Pinged first, closed within a few intervals (the lower bound depends on load).
            #expect(elapsed < .seconds(7))
            await tcp.close()
        }
    }

    /// With the default settings a page on another site can neither open a WebSocket nor read
    /// a long-polling reply; a loopback page can, without credentials.
    @Test func defaultOriginsAreSameOriginAndLoopback() async throws {
        try await withLiveServer { live in
            for origin in ["https://evil.example", "null"] {
                await #expect(throws: TestWebSocketError.self, "\(origin)") {
                    _ = try await TestWebSocket.connect(port: live.port, headers: [("Origin", origin)], on: LiveServer.group)
                }
                let handshake = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#
                let reply = try await TestHTTP.postJSON(handshake, port: live.port, headers: [("Origin", origin)], on: LiveServer.group)
                #expect(reply.status == 403, "\(origin): not processed, not just unreadable")
                #expect(reply.header("access-control-allow-origin") == nil)
                #expect(reply.header("access-control-allow-credentials") == nil)
            }
            #expect(live.broker.sessionCount == 0, "no refused origin made a session")
            // Callback-polling: a script load carries no Origin and needs no CORS, so the page
            // is judged by what the browser says (Sec-Fetch-Site, Referer).
            let query = "/bayeux?jsonp=cb&message=" + #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["callback-polling"]}]"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            func jsonp(_ headers: [(String, String)]) async throws -> TestHTTPResponse {
                try await TestHTTP.request("GET", port: live.port, path: query, headers: headers, on: LiveServer.group)
            }
            #expect(try await jsonp([("Sec-Fetch-Site", "cross-site"), ("Referer", "https://evil.example/page.html")]).status == 403)
            #expect(try await jsonp([("Sec-Fetch-Site", "cross-site")]).status == 403, "no Referer: a null page")
            #expect(try await jsonp([("Sec-Fetch-Site", "same-site"), ("Referer", "https://www.evil.example/")]).status == 403)
            #expect(live.broker.sessionCount == 0)
            let local = try await jsonp([("Sec-Fetch-Site", "cross-site"), ("Referer", "http://localhost:3000/app?x=1")])
            #expect(local.status == 200 && local.text.contains("cb("), "\(local.text)")
            #expect(try await jsonp([]).status == 200, "a non-browser client sends neither header")
            #expect(try await jsonp([("Sec-Fetch-Site", "same-origin")]).status == 200)
            let localSocket = try await TestWebSocket.connect(port: live.port, headers: [("Origin", "http://localhost:3000")], on: LiveServer.group)
            await localSocket.close()
            let preflight = try await TestHTTP.request(
                "OPTIONS", port: live.port, path: "/bayeux",
                headers: [("Origin", "http://localhost:3000"), ("Access-Control-Request-Method", "POST")], on: LiveServer.group)
            #expect(preflight.status == 204)
            #expect(preflight.header("access-control-allow-origin") == "http://localhost:3000")
            #expect(preflight.header("access-control-allow-credentials") == nil)
        }
    }

    @Test func corsAndPreflight() async throws {
        try await withLiveServer(server: { $0.allowedOrigins = ["https://app.example"] }) { live in
            let preflight = try await TestHTTP.request(
                "OPTIONS", port: live.port, path: "/bayeux/handshake",
                headers: [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "content-type")],
                on: LiveServer.group)
            #expect(preflight.status == 204)
            #expect(preflight.header("access-control-allow-origin") == "https://app.example")
            #expect(preflight.header("access-control-allow-credentials") == "true")
            #expect(preflight.header("access-control-allow-methods")?.contains("POST") == true)
            #expect(preflight.header("access-control-allow-headers") == "content-type")

            let handshake = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"}]"#
            let allowed = try await TestHTTP.postJSON(handshake, port: live.port, headers: [("Origin", "https://app.example")], on: LiveServer.group)
            #expect(allowed.header("access-control-allow-origin") == "https://app.example")
            #expect(allowed.header("content-type") == "application/json; charset=utf-8")

            let other = try await TestHTTP.postJSON(handshake, port: live.port, headers: [("Origin", "https://evil.example")], on: LiveServer.group)
            #expect(other.status == 403, "a refused origin's POST is not processed")
            #expect(other.header("access-control-allow-origin") == nil)
            let otherPreflight = try await TestHTTP.request("OPTIONS", port: live.port, path: "/bayeux", headers: [("Origin", "https://evil.example")], on: LiveServer.group)
            #expect(otherPreflight.status == 403)

            await #expect(throws: TestWebSocketError.self) {
                _ = try await TestWebSocket.connect(port: live.port, headers: [("Origin", "https://evil.example")], on: LiveServer.group)
            }
            let fine = try await TestWebSocket.connect(port: live.port, headers: [("Origin", "https://app.example")], on: LiveServer.group)
            await fine.close()
            // The server's own origin is always allowed (a same-origin page).
            let sameOrigin = try await TestWebSocket.connect(port: live.port, headers: [("Origin", "http://127.0.0.1:\(live.port)")], on: LiveServer.group)
            await sameOrigin.close()

            // A malformed upgrade is a 400, not a CORS refusal.
            let malformed = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            try await malformed.write("GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            #expect(String(decoding: try await malformed.readAll(until: .seconds(2)), as: UTF8.self).hasPrefix("HTTP/1.1 400"))
        }
    }

    @Test func callbackPollingAndFormBodies() async throws {
        try await withLiveServer { live in
            let message = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["callback-polling"],"id":"1"}]"#
            let encoded = message.addingPercentEncodingForQuery()
            let jsonp = try await TestHTTP.request("GET", port: live.port, path: "/bayeux?message=\(encoded)&jsonp=__jsonp1__", on: LiveServer.group)
            #expect(jsonp.status == 200)
            #expect(jsonp.header("content-type") == "text/javascript; charset=utf-8")
            #expect(jsonp.text.hasPrefix("/**/__jsonp1__([{"))
            #expect(jsonp.text.hasSuffix("]);"))
            #expect(jsonp.text.contains(#""successful":true"#))

            let bad = try await TestHTTP.request("GET", port: live.port, path: "/bayeux?message=\(encoded)&jsonp=alert(1)", on: LiveServer.group)
            #expect(bad.status == 400)

            let form = try await TestHTTP.request(
                "POST", port: live.port, path: "/bayeux",
                headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array("message=\(encoded)".utf8), on: LiveServer.group)
            #expect(form.status == 200)
            #expect(try form.json().first?["successful"] as? Bool == true)

            let notMounted = try await TestHTTP.postJSON(message, port: live.port, path: "/other", on: LiveServer.group)
            #expect(notMounted.status == 404)
        }
    }

    @Test func gracefulShutdownTellsClients() async throws {
        let live = try await LiveServer.start()
        let socket = try await RawBayeuxSocket.connect(port: live.port)
        let held = BayeuxTestClient(port: live.port, transport: .longPolling)
        try await held.start()
        let session = try #require(live.broker.session(id: await held.clientId))
        let deadline = ContinuousClock.now + .seconds(10)
        while !session.isHoldingConnect && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(session.isHoldingConnect)
        await live.stop()
        #expect(try await socket.ws.waitForClose() == .goingAway)
        // A second shutdown (the service's own, after a test's) waits and returns.
        await live.server.shutdown()
        #expect(live.server.connectionCount == 0)
        // The poll loop's connect (id 3, after the handshake and the first connect, which
        // `start()` sends itself) was held, and the shutdown answered it with `retry` (the
        // client may poll once more and find the server gone: that is fine).
        let deadline2 = ContinuousClock.now + .seconds(5)
        while await held.connectReplies.isEmpty && ContinuousClock.now < deadline2 { try await Task.sleep(for: .milliseconds(10)) }
        let replies = await held.connectReplies
        #expect(replies.first?["id"] == .string("3"), "\(replies.map(\.jsonText))")
        #expect(replies.first?["advice"]?["reconnect"] == .string("retry"), "\(replies.map(\.jsonText))")
        #expect(replies.first?["successful"] == .bool(true))
        await held.stop()
    }
}

extension String {
    func addingPercentEncodingForQuery() -> String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
