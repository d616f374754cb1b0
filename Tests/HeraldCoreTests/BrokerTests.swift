import HeraldCore
import HeraldProtocol
import NIOCore
import Testing

@Suite struct HandshakeAndConnectTests {
    @Test func handshakeReplyHasWhatClientsNeed() {
        var client = CoreClient(Broker())
        let reply = client.handshake()
        #expect(reply["successful"] == .bool(true))
        #expect(reply["id"] == .string("h"))
        #expect(reply["channel"] == .string("/meta/handshake"))
        #expect(reply["version"] == .string("1.0"))
        #expect(reply["supportedConnectionTypes"] == .array([.string("websocket"), .string("long-polling"), .string("callback-polling"), .string("cross-origin-long-polling")]))
        #expect(reply["advice"]?["interval"] == .number("0"))
        #expect(reply["advice"]?["reconnect"] == .string("retry"))
        #expect(client.clientId.count == 40)
        #expect(client.clientId.allSatisfy { $0.isHexDigit })
        var other = CoreClient(client.broker)
        _ = other.handshake()
        #expect(other.clientId != client.clientId)
    }

    @Test func handshakeErrors() {
        let client = CoreClient(Broker())
        let noVersion = client.sendOne(#"[{"channel":"/meta/handshake","supportedConnectionTypes":["websocket"],"id":1}]"#)
        #expect(noVersion["successful"] == .bool(false))
        #expect(noVersion["error"] == .string("402:version:Missing required parameter"))
        #expect(noVersion["id"] == .number("1"))
        let noTypes = client.sendOne(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["iframe","flash"]}]"#)
        #expect(noTypes["error"] == .string("301:iframe,flash:Connection types not supported"))
        #expect(noTypes["advice"]?["reconnect"] == .string("handshake"))
        #expect(client.broker.sessionCount == 0)
    }

    @Test func unknownClientIsToldToHandshake() {
        let client = CoreClient(Broker())
        let reply = client.sendOne(#"[{"channel":"/meta/connect","clientId":"nope","connectionType":"websocket","id":"1"}]"#)
        #expect(reply["successful"] == .bool(false))
        #expect(reply["error"] == .string("402::Unknown client"))
        #expect(reply["advice"]?["reconnect"] == .string("handshake"))
        #expect(reply["advice"]?["interval"] == .number("0"))
        let noClient = client.sendOne(#"[{"channel":"/meta/connect","connectionType":"websocket"}]"#)
        #expect(noClient["error"] == .string("402::Unknown client"))
        let subscribe = client.sendOne(#"[{"channel":"/meta/subscribe","clientId":"nope","subscription":"/a"}]"#)
        #expect(subscribe["error"] == .string("402::Unknown client"))
        #expect(subscribe["subscription"] == .string("/a"))
    }

    @Test func aKickedClientIsToldWhyAndNotToComeBackUntilForgotten() {
        let clock = ManualClock()
        var configuration = BrokerConfiguration()
        configuration.maxIntervalMilliseconds = 10_000
        let broker = Broker(configuration: configuration, clock: clock)
        var client = CoreClient(broker, type: .longPolling)
        _ = client.connected()
        let session = broker.session(id: client.clientId)!
        broker.removeSession(session, reason: .kicked("maintenance window"))

        // Not holding a connect when kicked: the next one gets the reason.
        let next = client.connect().replies
        #expect(next.first?["error"] == .string("402:maintenance window:Unknown client"))
        #expect(next.first?["advice"]?["reconnect"] == .string("none"))
        // Other clients, and ids never kicked, are still told to handshake.
        let other = client.sendOne(#"[{"channel":"/meta/connect","clientId":"nope","connectionType":"long-polling"}]"#)
        #expect(other["advice"]?["reconnect"] == .string("handshake"))
        // A handshake still works: the operator ends a session, not a person.
        _ = client.handshake()
        #expect(broker.session(id: client.clientId) != nil)

        // Two maxIntervals later the id is forgotten.
        let kickedId = session.id
        clock.advance(milliseconds: 20_001)
        let later = client.sendOne(#"[{"channel":"/meta/connect","clientId":"\#(kickedId)","connectionType":"long-polling"}]"#)
        #expect(later["advice"]?["reconnect"] == .string("handshake"))
    }

    @Test func kickedClientsAreRememberedUpToACapacity() {
        var kicked = KickedClients(capacity: 3, keepNanoseconds: 1_000)
        for i in 0..<5 { kicked.insert("c\(i)", reason: "r\(i)", now: 0) }
        #expect(kicked.reason(for: "c0", now: 0) == nil)
        #expect(kicked.reason(for: "c1", now: 0) == nil)
        #expect(kicked.reason(for: "c4", now: 0) == "r4")
        #expect(kicked.reason(for: "c4", now: 1_001) == nil)
    }

    @Test func firstConnectIsAnsweredAtOnceLaterOnesAreHeld() {
        var client = CoreClient(Broker())
        _ = client.handshake()
        let first = client.connect(id: "1")
        #expect(first.result.held == nil)
        #expect(first.replies.first?["successful"] == .bool(true))
        let second = client.connect(id: "2")
        #expect(second.replies.isEmpty)
        let held = try! #require(second.result.held)
        #expect(held.timeout == .milliseconds(30_000))
        client.broker.timeoutHeldConnect(held)
        #expect(client.connection.connectReplies.map { $0["id"] } == [.string("2")])
        // A timeout for a connect that already ended does nothing.
        client.broker.timeoutHeldConnect(held)
        #expect(client.connection.connectReplies.count == 1)
    }

    @Test func clientAdviceTimeoutZeroIsAnsweredAtOnce() {
        var client = CoreClient(Broker())
        _ = client.handshake()
        _ = client.connect(id: "1")
        let again = client.connect(id: "2", advice: #","advice":{"timeout":0}"#)
        #expect(again.result.held == nil)
        #expect(again.replies.count == 1)
    }

    @Test func newerConnectReleasesTheOlderOne() {
        var client = CoreClient(Broker())
        _ = client.connected()
        let a = client.connect(id: "a")
        #expect(a.result.held != nil)
        let b = client.connect(id: "b")
        #expect(b.result.held != nil)
        #expect(client.connection.connectReplies.map { $0["id"] } == [.string("a")])
    }

    @Test func longPollConnectInABatchIsNotHeld() {
        var client = CoreClient(Broker(), type: .longPolling)
        _ = client.connected()
        let (replies, result) = client.send(#"[{"channel":"/meta/connect","clientId":"\#(client.clientId)","connectionType":"long-polling","id":"1"},{"channel":"/meta/subscribe","clientId":"\#(client.clientId)","subscription":"/a","id":"2"}]"#)
        #expect(result.held == nil)
        #expect(replies.map { $0["id"] } == [.string("1"), .string("2")])
    }

    @Test func heldLongPollIsReleasedByEventsWhichComeWithTheReply() {
        let broker = Broker()
        var subscriber = CoreClient(broker, type: .longPolling)
        _ = subscriber.connected()
        #expect(subscriber.subscribe("/stocks/*")["successful"] == .bool(true))
        let held = subscriber.connect(id: "9")
        #expect(held.result.held != nil)
        var publisher = CoreClient(broker)
        _ = publisher.connected()
        #expect(publisher.publish("/stocks/AAPL", #"{"p":1}"#)["successful"] == .bool(true))
        // The transport hops to its loop and releases the connect.
        broker.releaseHeldConnect(for: held.result.held!.session, heldBy: subscriber.connection)
        #expect(subscriber.connection.connectReplies.map { $0["id"] } == [.string("9")])
        #expect(subscriber.pushed == [try! JSONParser.parse(#"{"channel":"/stocks/AAPL","data":{"p":1}}"#)])
    }

    @Test func eventsQueuedBeforeLongPollConnectComeWithIt() {
        let broker = Broker()
        var subscriber = CoreClient(broker, type: .longPolling)
        _ = subscriber.connected()
        _ = subscriber.subscribe("/a")
        var publisher = CoreClient(broker)
        _ = publisher.connected()
        _ = publisher.publish("/a", "1")
        _ = publisher.publish("/a", "2")
        let (replies, result) = subscriber.connect(id: "x")
        #expect(result.held == nil)
        #expect(replies.count == 3)
        #expect(replies.dropFirst().map { $0["data"] } == [.number("1"), .number("2")])
    }
}

@Suite struct RoutingTests {
    @Test func deliveryIsDataAndChannelOnly() {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        _ = a.subscribe("/chat/*")
        let ack = a.publish("/chat/room", #"{"text":"hi","n":12345678901234567}"#, id: "42")
        #expect(ack == (try! JSONParser.parse(#"{"id":"42","channel":"/chat/room","successful":true}"#)))
        // The publisher gets its own message; no id and no clientId on the delivery (rule 4).
        #expect(a.pushed == [try! JSONParser.parse(#"{"channel":"/chat/room","data":{"text":"hi","n":12345678901234567}}"#)])
    }

    @Test func overlappingPatternsDeliverOnce() {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        for pattern in ["/**", "/a/**", "/a/b/*", "/a/b/c", "/a/b/**"] {
            #expect(a.subscribe(pattern)["successful"] == .bool(true))
        }
        _ = a.publish("/a/b/c", "1")
        _ = a.publish("/a/b", "2")
        _ = a.publish("/x", "3")
        _ = a.publish("/a/b/c/d", "4")
        #expect(a.pushed.map { $0["data"] } == [.number("1"), .number("2"), .number("3"), .number("4")])
        #expect(broker.subscriptionCount == 5)
    }

    @Test func wildcardScopes() {
        let broker = Broker()
        var one = CoreClient(broker)
        _ = one.connected()
        _ = one.subscribe("/foo/*")
        var deep = CoreClient(broker)
        _ = deep.connected()
        _ = deep.subscribe("/foo/**")
        var pub = CoreClient(broker)
        _ = pub.connected()
        for channel in ["/foo", "/foobar", "/foo/bar", "/foo/bar/boo", "/foobar/boo"] {
            _ = pub.publish(channel, "\"\(channel)\"")
        }
        #expect(one.pushed.map { $0["channel"] } == [.string("/foo/bar")])
        #expect(deep.pushed.map { $0["channel"] } == [.string("/foo/bar"), .string("/foo/bar/boo")])
    }

    @Test func unsubscribeStopsDelivery() {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        _ = a.subscribe("/a/**")
        _ = a.publish("/a/1", "1")
        let reply = a.unsubscribe("/a/**")
        #expect(reply["successful"] == .bool(true))
        #expect(reply["subscription"] == .string("/a/**"))
        _ = a.publish("/a/1", "2")
        #expect(a.pushed.map { $0["data"] } == [.number("1")])
        #expect(broker.subscriptionCount == 0)
    }

    @Test func subscriptionArraysAreAllOrNothing() {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        let bad = a.subscribe(#"["/ok","/bad/*/x"]"#)
        #expect(bad["successful"] == .bool(false))
        #expect(bad["error"] == .string("405:/bad/*/x:Invalid channel"))
        #expect(bad["subscription"] == .array([.string("/ok"), .string("/bad/*/x")]))
        #expect(broker.subscriptionCount == 0)
        let good = a.subscribe(#"["/ok","/also/**"]"#)
        #expect(good["successful"] == .bool(true))
        #expect(broker.subscriptionCount == 2)
    }

    @Test func metaAndServiceChannels() {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        #expect(a.subscribe("/meta/*")["error"] == .string("403:/meta/*:Forbidden channel"))
        #expect(a.subscribe("/meta/connect")["error"] == .string("403:/meta/connect:Forbidden channel"))
        // Service subscriptions succeed and are not recorded (CometD JS relies on that).
        #expect(a.subscribe("/service/echo")["successful"] == .bool(true))
        #expect(broker.subscriptionCount == 0)
        // GHSA-qpg4-4w7w-2mq5: only exact meta names are commands.
        let bypass = a.sendOne(#"[{"channel":"/meta/subscribe/x","clientId":"\#(a.clientId)","subscription":"/meta/*","data":1}]"#)
        #expect(bypass["error"] == .string("403:/meta/subscribe/x:Forbidden channel"))
        #expect(a.publish("/meta/connect/", "1")["error"] == .string("405:/meta/connect/:Invalid channel"))
        #expect(a.publish("/foo/*", "1")["error"] == .string("405:/foo/*:Invalid channel"))
        #expect(a.publish("/foo/**", "1")["error"] == .string("405:/foo/**:Invalid channel"))
        #expect(a.sendOne(#"[{"channel":"/x","clientId":"\#(a.clientId)"}]"#)["error"] == .string("402:data:Missing required parameter"))
        #expect(a.sendOne(#"[{"clientId":"\#(a.clientId)","id":"5"}]"#)["error"] == .string("402:channel:Missing required parameter"))
    }

    @Test func serviceMessagesAreNeverBroadcast() {
        let broker = Broker()
        broker.registerService(ChannelPattern("/service/echo")!) { request in
            .object(JSONObject([("echo", .raw(request.data))]))
        }
        var spy = CoreClient(broker)
        _ = spy.connected()
        _ = spy.subscribe("/**")
        var caller = CoreClient(broker)
        _ = caller.connected()
        let ack = caller.publish("/service/echo", #"{"q":1}"#)
        #expect(ack["successful"] == .bool(true))
        #expect(caller.pushed == [try! JSONParser.parse(#"{"channel":"/service/echo","data":{"echo":{"q":1}}}"#)])
        #expect(spy.pushed.isEmpty)
        // No handler: accepted, goes nowhere.
        #expect(caller.publish("/service/none", "1")["successful"] == .bool(true))
        #expect(spy.pushed.isEmpty)
    }

    @Test func anonymousPublishIsRefusedUnlessAllowed() {
        let client = CoreClient(Broker())
        #expect(client.sendOne(#"[{"channel":"/a","data":1}]"#)["error"] == .string("402::Unknown client"))
        var configuration = BrokerConfiguration()
        configuration.allowAnonymousPublish = true
        let open = CoreClient(Broker(configuration: configuration))
        #expect(open.sendOne(#"[{"channel":"/a","data":1}]"#)["successful"] == .bool(true))
    }

    @Test func oversizedMessageGetsAnError() {
        var configuration = BrokerConfiguration()
        configuration.maxMessageBytes = 200
        let broker = Broker(configuration: configuration)
        var a = CoreClient(broker)
        _ = a.connected()
        _ = a.subscribe("/a")
        let big = "\"" + String(repeating: "x", count: 200) + "\""
        #expect(a.publish("/a", big)["error"] == .string("413:200:Message too large"))
        #expect(a.publish("/a", "1")["successful"] == .bool(true))
        #expect(a.pushed.map { $0["data"] } == [.number("1")])
    }

    @Test func publishOrderIsKeptForEverySubscriber() {
        let broker = Broker()
        var subscribers = (0..<3).map { _ in CoreClient(broker) }
        for i in subscribers.indices {
            _ = subscribers[i].connected()
            _ = subscribers[i].subscribe("/ticks")
        }
        var publisher = CoreClient(broker)
        _ = publisher.connected()
        for n in 0..<1000 { _ = publisher.publish("/ticks", String(n)) }
        for subscriber in subscribers {
            #expect(subscriber.pushed.map { $0["data"]?.intValue } == (0..<1000).map { $0 })
        }
    }

    @Test func serverSidePublish() throws {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        _ = a.subscribe("/news")
        #expect(try broker.publish(ChannelName("/news")!, json: #"{"h":"x"}"#) == 1)
        #expect(throws: BayeuxError.self) { try broker.publish(ChannelName("/news")!, json: "{nope") }
        // Never broadcast, not even from the server side (bayeux-notes rule 12).
        #expect(throws: BayeuxError.forbiddenChannel("/service/x")) { try broker.publish(ChannelName("/service/x")!, json: "1") }
        #expect(throws: BayeuxError.forbiddenChannel("/meta/connect")) { try broker.publish(ChannelName("/meta/connect")!, json: "1") }
        #expect(a.pushed.count == 1)
    }
}

@Suite struct SessionLifecycleTests {
    @Test func disconnectEndsTheSessionAndReleasesTheHeldConnect() {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        _ = a.subscribe("/a")
        let held = a.connect(id: "held")
        #expect(held.result.held != nil)
        let reply = a.sendOne(#"[{"channel":"/meta/disconnect","clientId":"\#(a.clientId)","id":"d"}]"#)
        #expect(reply["successful"] == .bool(true))
        #expect(a.connection.connectReplies.first?["advice"]?["reconnect"] == .string("none"))
        #expect(broker.sessionCount == 0)
        #expect(broker.subscriptionCount == 0)
        #expect(a.connect().replies.first?["error"] == .string("402::Unknown client"))
        #expect(a.sendOne(#"[{"channel":"/meta/disconnect","clientId":"\#(a.clientId)"}]"#)["error"] == .string("402::Unknown client"))
    }

    @Test func sessionsExpireAfterMaxIntervalWithoutConnect() {
        let clock = ManualClock()
        var configuration = BrokerConfiguration()
        configuration.maxIntervalMilliseconds = 10_000
        let broker = Broker(configuration: configuration, clock: clock)
        var idle = CoreClient(broker)
        _ = idle.connected()
        _ = idle.subscribe("/a")
        var holding = CoreClient(broker)
        _ = holding.connected()
        let held = holding.connect(id: "h")
        #expect(held.result.held != nil)

        clock.advance(milliseconds: 9_999)
        #expect(broker.expireSessions() == 0)
        clock.advance(milliseconds: 2)
        // The idle session expires; the one with a held connect never does.
        #expect(broker.expireSessions() == 1)
        #expect(broker.session(id: idle.clientId) == nil)
        #expect(broker.session(id: holding.clientId) != nil)
        #expect(broker.subscriptionCount == 0)

        // Once its connect ends, the clock starts for it too.
        broker.timeoutHeldConnect(held.result.held!)
        clock.advance(milliseconds: 10_001)
        #expect(broker.expireSessions() == 1)
        #expect(broker.sessionCount == 0)
    }

    @Test func activityExtendsTheSession() {
        let clock = ManualClock()
        var configuration = BrokerConfiguration()
        configuration.maxIntervalMilliseconds = 1_000
        let broker = Broker(configuration: configuration, clock: clock)
        var a = CoreClient(broker)
        _ = a.connected()
        clock.advance(milliseconds: 800)
        _ = a.connect(id: "2", advice: #","advice":{"timeout":0}"#)
        clock.advance(milliseconds: 800)
        #expect(broker.expireSessions() == 0)
        clock.advance(milliseconds: 300)
        #expect(broker.expireSessions() == 1)
    }

    @Test func detachedConnectionKeepsTheSessionUntilExpiry() {
        let clock = ManualClock()
        let broker = Broker(clock: clock)
        var a = CoreClient(broker)
        _ = a.connected()
        _ = a.subscribe("/a")
        let held = a.connect(id: "h")
        let session = held.result.held!.session
        broker.detach(a.connection, from: session)
        // Messages published while no connection is attached wait in the queue...
        var p = CoreClient(broker)
        _ = p.connected()
        _ = p.publish("/a", "1")
        #expect(a.pushed.isEmpty)
        #expect(session.pendingBytes > 0)
        // ...and are delivered when the client connects again on a new connection.
        let fresh = MemoryConnection()
        var again = CoreClient(broker, connection: fresh)
        again.clientId = a.clientId
        _ = again.connect(id: "again")
        #expect(fresh.pushed.map { $0["data"] } == [.number("1")])
    }

    @Test func slowConsumerIsDisconnectedAndOthersAreUnaffected() {
        var configuration = BrokerConfiguration()
        configuration.maxPendingBytesPerSession = 2_000
        let broker = Broker(configuration: configuration)
        var slow = CoreClient(broker, connection: MemoryConnection(drainsImmediately: false))
        _ = slow.connected()
        _ = slow.subscribe("/feed")
        var fast = CoreClient(broker)
        _ = fast.connected()
        _ = fast.subscribe("/feed")
        var publisher = CoreClient(broker)
        _ = publisher.connected()
        for n in 0..<100 {
            #expect(publisher.publish("/feed", #"{"n":\#(n),"pad":"0123456789012345678901234567890123456789"}"#)["successful"] == .bool(true))
        }
        #expect(slow.connection.state.withLock { $0.closedReason } == .slowConsumer)
        #expect(broker.session(id: slow.clientId) == nil)
        #expect(fast.pushed.count == 100)
        #expect(broker.counters.slowConsumers.load(ordering: .relaxed) == 1)
        // One notification for the whole burst while the sink had not drained.
        #expect(slow.connection.state.withLock { $0.notifications } == 1)
    }

    @Test func maxSessionsIsEnforced() {
        var configuration = BrokerConfiguration()
        configuration.maxSessions = 2
        let broker = Broker(configuration: configuration)
        var clients = (0..<3).map { _ in CoreClient(broker) }
        #expect(clients[0].handshake()["successful"] == .bool(true))
        #expect(clients[1].handshake()["successful"] == .bool(true))
        let refused = clients[2].handshake()
        #expect(refused["successful"] == .bool(false))
        #expect(refused["error"] == .string("503:2:Too many sessions"))
    }

    @Test func shutdownTellsClientsToRetry() {
        let broker = Broker()
        var a = CoreClient(broker)
        _ = a.connected()
        _ = a.connect(id: "h")
        var b = CoreClient(broker)
        _ = b.connected()
        broker.shutdown()
        #expect(a.connection.connectReplies.first?["advice"]?["reconnect"] == .string("retry"))
        #expect(b.connection.state.withLock { $0.closedReason } == .goingAway)
        #expect(broker.sessionCount == 0)
    }
}

@Suite struct PublishAcknowledgementTests {
    struct Passive: BayeuxExtension {}

    /// A successful publish's acknowledgement is the same with or without an extension that
    /// sees replies, for every `id` shape, and echoes the `id` with its JSON type.
    @Test func fastAndGeneralPathsWriteTheSameBytes() {
        func replies(extended: Bool) -> [String] {
            let broker = Broker()
            if extended { broker.addExtension(Passive()) }
            var client = CoreClient(broker)
            _ = client.handshake()
            let batch = #"[{"channel":"/a/b","clientId":"\#(client.clientId)","data":1,"id":"s\"1"},"#
                + #"{"channel":"/a/b","clientId":"\#(client.clientId)","data":2,"id":17},"#
                + #"{"channel":"/a/b","clientId":"\#(client.clientId)","data":3},"#
                + #"{"channel":"/a/b","clientId":"\#(client.clientId)","data":4,"id":null},"#
                + #"{"channel":"/a/*","clientId":"\#(client.clientId)","data":5,"id":"w"},"#
                + #"{"channel":"/a/b","clientId":"\#(client.clientId)","data":6,"id":"42"},"#
                + #"{"channel":"/a/b","clientId":"\#(client.clientId)","data":7,"id":"caf\#u{E9}\#u{2028}"}]"#
            let messages = try! MessageCodec.decodeBatch(ByteBuffer(string: batch))
            return broker.process(messages, type: .websocket, connection: client.connection).replies.map { String(buffer: $0) }
        }
        let fast = replies(extended: false)
        #expect(fast == replies(extended: true))
        #expect(fast.first == #"{"id":"s\"1","channel":"/a/b","successful":true}"#)
        #expect(fast[1] == #"{"id":17,"channel":"/a/b","successful":true}"#)
        #expect(fast[2] == #"{"channel":"/a/b","successful":true}"#)
        #expect(fast[4].contains(#""successful":false"#))
        #expect(fast[5] == #"{"id":"42","channel":"/a/b","successful":true}"#)
        #expect(fast[6] == #"{"id":"café\u2028","channel":"/a/b","successful":true}"#)
    }
}

@Suite struct ExtensionTests {
    struct Gate: BayeuxExtension {
        func incoming(_ message: inout BayeuxMessage, session: Session?) -> ExtensionDecision {
            if message.channel == "/meta/subscribe", message.ext?["token"] != .string("secret") {
                return .reject(BayeuxError(code: 403, args: ["token"], message: "Forbidden"))
            }
            if message.channel == "/drop" { return .drop }
            return .continue
        }
        func outgoingReply(_ reply: inout JSONObject, request: BayeuxMessage, session: Session?) {
            if request.channel == "/meta/handshake" { reply["ext"] = .object(JSONObject([("gate", .bool(true))])) }
        }
        func outgoingDelivery(_ delivery: inout Delivery) {
            delivery.ext = JSONObject([("stamp", .int(7))])
        }
    }

    @Test func pipelineCanRejectDropAndDecorate() {
        let broker = Broker()
        broker.addExtension(Gate())
        var a = CoreClient(broker)
        #expect(a.handshake()["ext"]?["gate"] == .bool(true))
        _ = a.connect()
        #expect(a.subscribe("/a")["error"] == .string("403:token:Forbidden"))
        #expect(broker.subscriptionCount == 0)
        let ok = a.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(a.clientId)","subscription":"/a","ext":{"token":"secret"}}]"#)
        #expect(ok["successful"] == .bool(true))
        let (dropped, _) = a.send(#"[{"channel":"/drop","clientId":"\#(a.clientId)","data":1}]"#)
        #expect(dropped.isEmpty)
        _ = a.publish("/a", "1")
        #expect(a.pushed == [try! JSONParser.parse(#"{"channel":"/a","data":1,"ext":{"stamp":7}}"#)])
    }
}
