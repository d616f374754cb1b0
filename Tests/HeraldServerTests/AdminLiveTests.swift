import Foundation
import HeraldAdmin
import HeraldCore
import HeraldProtocol
import HeraldServer
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import Testing

/// The admin API against a live data plane: a `LiveServer` and an `AdminServer` on loopback
/// ports chosen by the OS, driven over real HTTP.
@Suite struct AdminLiveTests {
    static let token = "test-token-0123456789"

    struct Admin {
        let live: LiveServer
        let port: Int

        func request(_ method: String, _ path: String, body: String? = nil, token: String? = AdminLiveTests.token, headers extra: [(String, String)] = [], bytes: [UInt8]? = nil) async throws -> (status: Int, json: JSONValue?, response: TestHTTPResponse) {
            var headers: [(String, String)] = []
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            if (body != nil || bytes != nil) && !extra.contains(where: { $0.0 == "Content-Type" }) { headers.append(("Content-Type", "application/json")) }
            headers += extra
            let response = try await TestHTTP.request(method, port: port, path: path, headers: headers, body: bytes ?? body.map { Array($0.utf8) }, on: LiveServer.group)
            return (response.status, try? JSONParser.parse(response.text), response)
        }
    }

    /// Runs `body` against a data plane and its admin API, and stops both.
    func withAdmin<T>(
        token: String? = AdminLiveTests.token,
        broker configure: (inout BrokerConfiguration) -> Void = { _ in },
        _ body: (Admin) async throws -> T
    ) async throws -> T {
        try await withLiveServer(broker: configure) { live in
            var configuration = AdminConfiguration()
            configuration.port = 0
            configuration.token = token
            configuration.maxBodyBytes = 64 * 1024
            var logger = Logger(label: "herald.test.admin")
            logger.logLevel = .critical
            let (bound, continuation) = AsyncStream.makeStream(of: Int.self)
            let server = live.server
            let admin = try AdminServer(
                broker: live.broker,
                configuration: configuration,
                dataPlane: AdminDataPlane(connections: { server.connectionsByTransport }, isReady: { server.isServing }, traffic: { server.traffic.totals }),
                eventLoopGroup: LiveServer.group,
                logger: logger,
                onListening: { continuation.yield($0.port ?? 0) }
            )
            let running = Task { try await admin.run() }
            defer { running.cancel() }
            var iterator = bound.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let result = try await body(Admin(live: live, port: port))
            running.cancel()
            _ = await running.result
            return result
        }
    }

    @Test func probesAnswerWithoutTheTokenAndEverythingElseNeedsIt() async throws {
        try await withAdmin { admin in
            let health = try await admin.request("GET", "/v1/health", token: nil)
            #expect(health.status == 200)
            #expect(health.json?["status"] == .string("ok"))
            let ready = try await admin.request("GET", "/v1/ready", token: nil)
            #expect(ready.status == 200)

            for token in [nil, "wrong", Self.token + "x", String(Self.token.dropLast())] as [String?] {
                let denied = try await admin.request("GET", "/v1/stats", token: token)
                #expect(denied.status == 401, "token \(token ?? "none")")
                #expect(denied.json?["error"]?["code"] == .string("unauthorized"))
                #expect(denied.response.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            }
            let denied = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":1}"#, token: nil)
            #expect(denied.status == 401)
            #expect(admin.live.broker.statistics.published == 0)
        }
    }

    @Test func errorsAreJSONWithAStableCode() async throws {
        try await withAdmin { admin in
            let unknown = try await admin.request("GET", "/v1/nothing")
            #expect(unknown.status == 404)
            #expect(unknown.json?["error"]?["code"] == .string("not_found"))

            let wrongMethod = try await admin.request("PUT", "/v1/stats", body: "{}")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.response.header("Allow") == "GET")
            #expect(wrongMethod.json?["error"]?["code"] == .string("method_not_allowed"))

            for body in ["not json", "[1]", #"{"channel":"/a"}"#, #"{"channel":"no-slash","data":1}"#, #"{"channel":"/a/*","data":1}"#,
                         #"{"channel":"/a","channels":["/b"],"data":1}"#, #"{"messages":[]}"#, #"{"channel":"/a","data":1,"retain":true}"#] {
                let bad = try await admin.request("POST", "/v1/publish", body: body)
                #expect(bad.status == 400, "\(body): \(bad.response.text)")
                #expect(bad.json?["error"]?["code"] == .string("bad_request"), "\(body)")
            }

            let huge = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":""# + String(repeating: "x", count: 70_000) + #""}"#)
            #expect(huge.status == 413)
            #expect(huge.json?["error"]?["code"] == .string("body_too_large"))
        }
    }

    @Test func anAdminPublishReachesWebSocketAndLongPollingSubscribers() async throws {
        try await withAdmin(broker: { $0.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"{"/stocks/**": {"retain": true, "historySize": 10}}"#).objectValue!) }) { admin in
            var subscribers: [BayeuxTestClient] = []
            for transport in BayeuxTestClient.Transport.allCases {
                let client = BayeuxTestClient(port: admin.live.port, transport: transport)
                try await client.start()
                #expect(try await client.subscribe("/stocks/*")["successful"] == .bool(true))
                subscribers.append(client)
            }

            let one = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/stocks/AAPL","data":{"px":189.5}}"#)
            #expect(one.status == 200)
            #expect(one.json?["results"]?.arrayValue?.first?["offset"] == .int(1))
            #expect(one.json?["results"]?.arrayValue?.first?["epoch"]?.stringValue?.isEmpty == false)

            let many = try await admin.request("POST", "/v1/publish", body: #"{"channels":["/stocks/MSFT","/stocks/GOOG"],"data":{"px":1}}"#)
            #expect(many.json?["results"]?.arrayValue?.count == 2)

            let batch = try await admin.request("POST", "/v1/publish", body: #"{"messages":[{"channel":"/stocks/AAPL","data":{"px":190}},{"channel":"/meta/nope","data":1},{"channel":"/plain/x","data":"text"}]}"#)
            let results = try #require(batch.json?["results"]?.arrayValue)
            #expect(results.count == 3)
            #expect(results[0]["offset"] == .int(2))
            #expect(results[1]["error"]?["code"] == .string("403"))
            #expect(results[2]["offset"] == nil)
            #expect(results[2]["error"] == nil)

            for client in subscribers {
                let events = try await client.waitForEvents(4)
                #expect(events.map { $0["channel"]?.stringValue } == ["/stocks/AAPL", "/stocks/MSFT", "/stocks/GOOG", "/stocks/AAPL"])
                #expect(events[0]["data"]?["px"] == .number("189.5"))
                await client.stop()
            }
        }
    }

    @Test func statsCountConnectionsSessionsAndMessages() async throws {
        try await withAdmin { admin in
            let webSocket = BayeuxTestClient(port: admin.live.port, transport: .websocket)
            try await webSocket.start()
            _ = try await webSocket.subscribe("/a")
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":1}"#)
            _ = try await webSocket.waitForEvents(1)
            let stats = try await admin.request("GET", "/v1/stats")
            #expect(stats.status == 200)
            let json = try #require(stats.json)
            #expect(json["sessions"] == .int(1))
            #expect(json["subscriptions"] == .int(1))
            #expect(json["connections"]?["websocket"] == .int(1))
            #expect(json["messages"]?["published"]?["total"] == .int(1))
            #expect(json["messages"]?["delivered"]?["total"] == .int(1))
            #expect(json["version"] == .string(HeraldVersion.current))
            #expect((json["rssBytes"]?.intValue ?? 0) > 0)
            await webSocket.stop()
        }
    }

    @Test func statsCountBytesReceivedAndSentExactly() async throws {
        try await withAdmin { admin in
            let before = try #require(try await admin.request("GET", "/v1/stats").json?["bytes"])
            let socket = try await TestWebSocket.connect(port: admin.live.port, on: LiveServer.group)
            let handshake = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"1"}]"#
            try await socket.send(handshake)
            let reply = try await socket.receive()
            let after = try #require(try await admin.request("GET", "/v1/stats").json?["bytes"])
            await socket.close()
            // A client frame under 126 bytes has a 2-byte header and a 4-byte mask; the server's
            // reply a 2-byte header under 126 bytes, 4 up to 65535. The upgrade request's HTTP
            // headers are not counted.
            let replyHeader = reply.utf8.count < 126 ? 2 : 4
            let received = try #require(after["received"]?.intValue) - (before["received"]?.intValue ?? -1)
            let sent = try #require(after["sent"]?.intValue) - (before["sent"]?.intValue ?? -1)
            #expect(received == handshake.utf8.count + 6)
            #expect(sent == reply.utf8.count + replyHeader)

            let metrics = try await admin.request("GET", "/metrics").response.text
            #expect(metrics.contains("herald_received_bytes_total "))
            #expect(metrics.contains("herald_sent_bytes_total "))
        }
    }

    @Test func metricsAreInPrometheusTextFormatAndCountWhatHappened() async throws {
        try await withAdmin { admin in
            #expect(try await admin.request("GET", "/metrics", token: nil).status == 401)
            let webSocket = BayeuxTestClient(port: admin.live.port, transport: .websocket)
            try await webSocket.start()
            _ = try await webSocket.subscribe("/a")
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":1}"#)
            _ = try await webSocket.waitForEvents(1)
            let first = try await admin.request("GET", "/metrics")
            #expect(first.status == 200)
            #expect(first.response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = first.response.text
            #expect(text.contains("# TYPE herald_messages_published_total counter"), "\(text)")
            #expect(text.contains("herald_messages_published_total 1\n"), "\(text)")
            #expect(text.contains("herald_messages_delivered_total 1\n"), "\(text)")
            #expect(text.contains(#"herald_connections{transport="websocket"} 1.0"#), "\(text)")
            #expect(text.contains("herald_sessions 1.0"), "\(text)")
            #expect(text.contains("herald_resident_memory_bytes "), "\(text)")
            #expect(!text.contains("/a"), "no channel names in labels")

            // Counters grow by what happened since the last scrape, not by the totals again.
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":2}"#)
            _ = try await webSocket.waitForEvents(2)
            let second = try await admin.request("GET", "/metrics").response.text
            #expect(second.contains("herald_messages_published_total 2\n"), "\(second)")
            await webSocket.stop()
        }
    }

    /// A limit's trips show in `/metrics` (labelled by limit) and in `/v1/stats`.
    @Test func limitTripsAreCountedInMetricsAndStats() async throws {
        try await withAdmin { admin in
            let batch = "[" + Array(repeating: #"{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}"#, count: 3).joined(separator: ",") + "]"
            _ = try await TestHTTP.postJSON(batch, port: admin.live.port, on: LiveServer.group)
            let metrics = try await admin.request("GET", "/metrics").response.text
            #expect(metrics.contains("# TYPE herald_limit_trips_total counter"), "\(metrics)")
            #expect(metrics.contains(#"herald_limit_trips_total{limit="handshakes_per_batch"} 2"#), "\(metrics)")
            let stats = try await admin.request("GET", "/v1/stats").json
            #expect(stats?["limits"]?["handshakes_per_batch"]?.intValue == 2)
            #expect(stats?["limits"]?["outbound_bytes"]?.intValue == 0)
        }
    }

    @Test func serverSideSubscriptionsDeliverLiveMessagesUntilRemoved() async throws {
        try await withAdmin { admin in
            let client = BayeuxTestClient(port: admin.live.port, transport: .websocket)
            try await client.start()
            let id = await client.clientId
            let added = try await admin.request("POST", "/v1/clients/\(id)/subscriptions", body: #"{"channel":"/news/*"}"#)
            #expect(added.status == 200)
            #expect(added.json?["subscriptions"] == .array([.string("/news/*")]))
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/news/a","data":1}"#)
            let events = try await client.waitForEvents(1)
            #expect(events.first?["channel"] == .string("/news/a"))

            #expect(try await admin.request("POST", "/v1/clients/\(id)/subscriptions", body: #"{"channel":"/meta/connect"}"#).status == 403)
            #expect(try await admin.request("POST", "/v1/clients/\(id)/subscriptions", body: #"{"channel":"news"}"#).status == 400)
            #expect(try await admin.request("POST", "/v1/clients/nobody/subscriptions", body: #"{"channel":"/news/*"}"#).status == 404)
            #expect(try await admin.request("DELETE", "/v1/clients/\(id)/subscriptions/sports/*").status == 404)

            let removed = try await admin.request("DELETE", "/v1/clients/\(id)/subscriptions/news/*")
            #expect(removed.status == 200)
            #expect(removed.json?["subscriptions"] == .array([]))
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/news/b","data":2}"#)
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/probe","data":3}"#)
            #expect(admin.live.broker.statistics.delivered == 1)
            await client.stop()
        }
    }

    @Test func aServerSideSubscribePastTheLimitIsAConflict() async throws {
        try await withAdmin(broker: { $0.maxSubscriptionsPerSession = 1 }) { admin in
            let socket = try await RawBayeuxSocket.connect(port: admin.live.port)
            #expect(try await admin.request("POST", "/v1/clients/\(socket.clientId)/subscriptions", body: #"{"channel":"/a"}"#).status == 200)
            let refused = try await admin.request("POST", "/v1/clients/\(socket.clientId)/subscriptions", body: #"{"channel":"/b"}"#)
            #expect(refused.status == 409)
            #expect(refused.json?["error"]?["code"] == .string("too_many_subscriptions"))
            let forbidden = try await admin.request("POST", "/v1/clients/\(socket.clientId)/subscriptions", body: #"{"channel":"/service/x"}"#)
            #expect(forbidden.status == 403)
        }
    }

    @Test func clientsArePagedFilteredDescribedAndKicked() async throws {
        try await withAdmin { admin in
            var clients: [BayeuxTestClient] = []
            for i in 0..<5 {
                let client = BayeuxTestClient(port: admin.live.port, transport: i == 0 ? .longPolling : .websocket)
                try await client.start()
                _ = try await client.subscribe(i < 3 ? "/odd/\(i)" : "/even/**")
                clients.append(client)
            }
            // Pages of two, in clientId order, without repeats or gaps.
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await admin.request("GET", "/v1/clients?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200)
                let ids = page.json?["clients"]?.arrayValue?.compactMap { $0["clientId"]?.stringValue } ?? []
                #expect(ids.count <= 2)
                seen += ids
                cursor = page.json?["nextCursor"]?.stringValue
            } while cursor != nil
            var expected: [String] = []
            for client in clients { expected.append(await client.clientId) }
            #expect(seen == expected.sorted())

            let even = try await admin.request("GET", "/v1/clients?channel=/even/x")
            #expect(even.json?["clients"]?.arrayValue?.count == 2)

            let id = await clients[3].clientId
            let detail = try await admin.request("GET", "/v1/clients/\(id)")
            #expect(detail.json?["transport"] == .string("websocket"))
            #expect(detail.json?["subscriptions"] == .array([.string("/even/**")]))
            #expect(detail.json?["remoteAddress"]?.stringValue?.hasPrefix("127.0.0.1:") == true)
            #expect(detail.json?["dropped"] == .int(0))
            let poller = try await admin.request("GET", "/v1/clients/\(await clients[0].clientId)")
            #expect(poller.json?["transport"] == .string("long-polling"))
            #expect(poller.json?["remoteAddress"]?.stringValue?.hasPrefix("127.0.0.1:") == true)

            // The WebSocket client is closed with 4002 and the reason; the long-polling one
            // gets its held connect answered with reconnect: none.
            let kicked = try await admin.request("DELETE", "/v1/clients/\(id)?reason=maintenance")
            #expect(kicked.status == 200)
            #expect(kicked.json?["reason"] == .string("maintenance"))
            #expect(admin.live.broker.session(id: id) == nil)
            #expect(try await admin.request("GET", "/v1/clients/\(id)").status == 404)

            let pollerId = await clients[0].clientId
            _ = try await admin.request("DELETE", "/v1/clients/\(pollerId)")
            let deadline = ContinuousClock.now + .seconds(5)
            while await clients[0].connectReplies.last?["successful"] != .bool(false), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let last = await clients[0].connectReplies.last
            #expect(last?["advice"]?["reconnect"] == .string("none"))
            #expect(last?["error"] == .string("402:kicked:Unknown client"))
            for client in clients { await client.stop() }
        }
    }

    @Test func aKickedWebSocketSeesCloseCode4002WithTheReason() async throws {
        try await withAdmin { admin in
            let socket = try await RawBayeuxSocket.connect(port: admin.live.port)
            let id = socket.clientId
            #expect(try await admin.request("DELETE", "/v1/clients/\(id)?reason=bye%20now").status == 200)
            let close = try #require(try await socket.ws.waitForCloseFrame())
            #expect(close.code == WebSocketErrorCode(codeNumber: 4002))
            #expect(close.reason == "bye now")
        }
    }

    @Test func busiestChannelsComeFirstWithSortBySubscribers() async throws {
        try await withAdmin { admin in
            var clients: [BayeuxTestClient] = []
            // /b: 3 subscribers (one by wildcard), /a and /c: 1 each, /d: 2.
            for pattern in ["/b", "/b", "/x/**", "/a", "/c", "/d", "/d"] {
                let client = BayeuxTestClient(port: admin.live.port, transport: .websocket)
                try await client.start()
                _ = try await client.subscribe(pattern)
                clients.append(client)
            }
            _ = try await clients[2].subscribe("/b")
            let names = { (json: JSONValue?) in json?["channels"]?.arrayValue?.compactMap { $0["name"]?.stringValue } }
            let top = try await admin.request("GET", "/v1/channels?sort=subscribers&limit=3")
            #expect(top.status == 200)
            #expect(names(top.json) == ["/b", "/d", "/a"], "most subscribers first, ties in name order")
            #expect(top.json?["channels"]?.arrayValue?.first?["subscribers"]?.intValue == 3)
            #expect(top.json?["nextCursor"] == nil)
            let matching = try await admin.request("GET", "/v1/channels?sort=subscribers&pattern=/c")
            #expect(names(matching.json) == ["/c"])
            let byName = try await admin.request("GET", "/v1/channels?sort=name&limit=2")
            #expect(names(byName.json) == ["/a", "/b"])

            let withCursor = try await admin.request("GET", "/v1/channels?sort=subscribers&limit=1&cursor=/z")
            #expect(names(withCursor.json) == ["/b"], "one ranking page; a cursor has nothing to continue")
            let unknown = try await admin.request("GET", "/v1/channels?sort=rate")
            #expect(unknown.status == 400)
            #expect(unknown.json?["error"]?["message"]?.stringValue?.contains("name or subscribers") == true)
            for client in clients { await client.stop() }
        }
    }

    @Test func theDashboardPageLoadsWithoutTheTokenAndCannotBeFramed() async throws {
        try await withAdmin { admin in
            for (path, type) in [("/", "text/html"), ("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")] {
                let page = try await admin.request("GET", path, token: nil)
                #expect(page.status == 200, "\(path)")
                #expect(page.response.header("Content-Type")?.hasPrefix(type) == true, "\(path)")
                #expect(page.response.header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
                #expect(page.response.header("X-Frame-Options") == "DENY")
            }
            let page = try await admin.request("GET", "/", token: nil)
            #expect(page.response.text.contains(#"<script src="dashboard.js"></script>"#))
            // Its data still needs the token, and nothing else is open.
            #expect(try await admin.request("GET", "/v1/stats", token: nil).status == 401)
            #expect(try await admin.request("GET", "/index.html", token: nil).status == 401)
            #expect(try await admin.request("POST", "/", token: nil).status == 405)
        }
    }

    @Test func channelsHistoryAndRetainedValuesAreListedReadAndCleared() async throws {
        let policy = #"{"/stocks/**": {"retain": true, "historySize": 10}}"#
        try await withAdmin(broker: { $0.channels = try! ChannelPolicyTable.parse(JSONParser.parse(policy).objectValue!) }) { admin in
            let subscriber = BayeuxTestClient(port: admin.live.port, transport: .websocket)
            try await subscriber.start()
            _ = try await subscriber.subscribe("/plain/x")
            for px in 1...3 { _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/stocks/AAPL","data":{"px":\#(px)}}"#) }
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/stocks/MSFT","data":{"px":9}}"#)

            let all = try await admin.request("GET", "/v1/channels")
            let listed = all.json?["channels"]?.arrayValue ?? []
            #expect(listed.compactMap { $0["name"]?.stringValue } == ["/plain/x", "/stocks/AAPL", "/stocks/MSFT"])
            #expect(listed.first?["subscribers"] == .int(1))
            #expect(listed[1]["lastOffset"] == .int(3))
            #expect(listed[1]["retained"] == .bool(true))

            let first = try await admin.request("GET", "/v1/channels?pattern=/stocks/*&limit=1")
            #expect(first.json?["channels"]?.arrayValue?.map { $0["name"] } == [.string("/stocks/AAPL")])
            let cursor = try #require(first.json?["nextCursor"]?.stringValue)
            let second = try await admin.request("GET", "/v1/channels?pattern=/stocks/*&limit=1&cursor=\(cursor)")
            #expect(second.json?["channels"]?.arrayValue?.map { $0["name"] } == [.string("/stocks/MSFT")])
            #expect(second.json?["nextCursor"] == nil)

            let detail = try await admin.request("GET", "/v1/channels/stocks/AAPL")
            #expect(detail.json?["historyCount"] == .int(3))
            #expect(detail.json?["retainedMessage"]?["data"]?["px"] == .int(3))
            #expect(detail.json?["policy"]?["retain"] == .bool(true))
            #expect(try await admin.request("GET", "/v1/channels/nobody/here").status == 404)

            let since = try await admin.request("GET", "/v1/history/stocks/AAPL?since=1")
            #expect(since.json?["messages"]?.arrayValue?.map { $0["offset"] } == [.int(2), .int(3)])
            let limited = try await admin.request("GET", "/v1/history/stocks/AAPL?limit=1")
            #expect(limited.json?["messages"]?.arrayValue?.map { $0["offset"] } == [.int(1)])
            #expect(try await admin.request("GET", "/v1/history/stocks/AAPL?since=abc").status == 400)
            #expect(try await admin.request("GET", "/v1/history/plain/x").status == 404)
            #expect(try await admin.request("GET", "/v1/channels?pattern=stocks").status == 400)

            let cleared = try await admin.request("DELETE", "/v1/history/stocks/AAPL")
            #expect(cleared.json?["deleted"] == .int(3))
            let after = try await admin.request("GET", "/v1/channels/stocks/AAPL")
            #expect(after.json?["historyCount"] == .int(0))
            #expect(after.json?["lastOffset"] == .int(3))

            let dropped = try await admin.request("DELETE", "/v1/retained/stocks/AAPL")
            #expect(dropped.json?["deleted"] == .bool(true))
            #expect(try await admin.request("GET", "/v1/channels/stocks/AAPL").json?["retained"] == .bool(false))
            // A new subscriber to /stocks/* now gets only MSFT's retained value.
            let late = BayeuxTestClient(port: admin.live.port, transport: .websocket)
            try await late.start()
            _ = try await late.subscribe("/stocks/*")
            let events = try await late.waitForEvents(1)
            #expect(events.map { $0["channel"] } == [.string("/stocks/MSFT")])
            await late.stop()
            await subscriber.stop()
        }
    }

    /// README's Admin API commands, run as they are (curl, bash) against a live server with
    /// the token they export; only the address is this test's.
    @Test func readmeAdminCommandsWork() async throws {
        let readme = try String(contentsOf: ReadmeEmbeddingTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = readme[readme.range(of: "### Admin API")!.upperBound...]
        let block = ReadmeEmbeddingTests.lines(of: section, from: "```sh", to: "```").joined(separator: "\n")
        let token = try #require(block.firstMatch(of: /HERALD_ADMIN_TOKEN=(\S+)/)?.1)
        #expect(block.contains("127.0.0.1:8081"))
        try await withAdmin(token: String(token)) { admin in
            let socket = try await RawBayeuxSocket.connect(port: admin.live.port)
            // A subscriber, so that the listing has the channel to show.
            _ = try await socket.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(socket.clientId)","subscription":"/stocks/AAPL"}"#], expectReplies: 1)
            let script = "set -euo pipefail\nCLIENT_ID=\(socket.clientId)\n" + block.replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(admin.port)")
            let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), ["-c", script])
            #expect(status == 0, "\(output)")
            #expect(output.contains(#""status":"ok""#), "\(output)")
            #expect(output.contains(#""results":[{"channel":"/stocks/AAPL"}]"#), "\(output)")
            #expect(output.contains(#""channels":[{"name":"/stocks/AAPL""#), "\(output)")
            #expect(admin.live.broker.statistics.published == 1)
            #expect(admin.live.broker.session(id: socket.clientId) == nil)
            #expect(try await socket.ws.waitForCloseFrame()?.reason == "maintenance")
        }
    }

    @Test func hostileRequestsGetClearErrors() async throws {
        try await withAdmin(broker: { $0.maxMessageBytes = 400 }) { admin in
            let lower = try await admin.request("GET", "/v1/stats", token: nil, headers: [("Authorization", "bearer \(Self.token)")])
            #expect(lower.status == 200, "the scheme is case-insensitive")
            let notUTF8 = try await admin.request("POST", "/v1/publish", bytes: Array(#"{"channel":"/a","data":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8))
            #expect(notUTF8.status == 400)
            let form = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":1}"#, headers: [("Content-Type", "text/plain")])
            #expect(form.status == 415)
            #expect(form.json?["error"]?["code"] == .string("unsupported_media_type"))
            let large = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":""# + String(repeating: "x", count: 500) + #""}"#)
            #expect(large.json?["results"]?.arrayValue?.first?["error"]?["code"] == .string("413"))
            #expect(admin.live.broker.statistics.published == 0)
            for method in ["HEAD", "OPTIONS", "TRACE"] {
                #expect(try await admin.request(method, "/v1/stats").status == 405, "\(method)")
            }
            for limit in ["0", "1001", "-1", "x", "99999999999999999999"] {
                #expect(try await admin.request("GET", "/v1/clients?limit=\(limit)").status == 400, "limit \(limit)")
                #expect(try await admin.request("GET", "/v1/channels?limit=\(limit)").status == 400, "limit \(limit)")
            }
            // A name with a space, percent-encoded in the path.
            _ = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/chat/my room","data":1}"#)
            let subscriber = BayeuxTestClient(port: admin.live.port, transport: .websocket)
            try await subscriber.start()
            _ = try await subscriber.subscribe("/chat/my room")
            let encoded = try await admin.request("GET", "/v1/channels/chat/my%20room")
            #expect(encoded.status == 200)
            #expect(encoded.json?["name"] == .string("/chat/my room"))
            await subscriber.stop()
        }
    }

    @Test func withoutATokenOnlyLoopbackHostsAndNoForeignOrigins() async throws {
        try await withAdmin(token: nil) { admin in
            #expect(try await admin.request("GET", "/v1/stats", token: nil).status == 200)
            let rebound = try await admin.request("GET", "/v1/stats", token: nil, headers: [("Host", "attacker.example:\(admin.port)")])
            #expect(rebound.status == 403)
            #expect(rebound.json?["error"]?["code"] == .string("forbidden_host"))
            let crossSite = try await admin.request("POST", "/v1/publish", body: #"{"channel":"/a","data":1}"#, token: nil, headers: [("Origin", "https://evil.example")])
            #expect(crossSite.status == 403)
            #expect(crossSite.json?["error"]?["code"] == .string("forbidden_origin"))
            #expect(admin.live.broker.statistics.published == 0)
        }
    }

    @Test func withoutATokenOnlyLoopbackIsAccepted() throws {
        var configuration = AdminConfiguration()
        configuration.host = "0.0.0.0"
        #expect(throws: AdminError.self) {
            try AdminServer(broker: Broker(), configuration: configuration, dataPlane: AdminDataPlane(connections: { [:] }, isReady: { true }), logger: Logger(label: "t"))
        }
        configuration.token = "t"
        #expect(throws: Never.self) {
            try AdminServer(broker: Broker(), configuration: configuration, dataPlane: AdminDataPlane(connections: { [:] }, isReady: { true }), logger: Logger(label: "t"))
        }
        #expect(AdminConfiguration.isLoopback("127.0.0.1") && AdminConfiguration.isLoopback("127.1.2.3") && AdminConfiguration.isLoopback("::1"))
        #expect(!AdminConfiguration.isLoopback("10.0.0.1") && !AdminConfiguration.isLoopback("127.example.com") && !AdminConfiguration.isLoopback("0.0.0.0"))
        #expect(!"\(configuration)".contains("t)") && "\(configuration)".contains("<redacted>"))
    }
}
