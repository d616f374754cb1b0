import Foundation
import HeraldCore
import HeraldProtocol
import HeraldSQLite
import NIOCore
import Testing

/// Retained values, offsets, epochs, TTLs and replay, through the broker with in-memory
/// connections (the live tests repeat the important ones over real sockets).
@Suite struct HistoryTests {
    static func table(_ json: String) -> ChannelPolicyTable {
        try! ChannelPolicyTable.parse(JSONParser.parse(json).objectValue!)
    }

    static let stocks = table(#"{"/stocks/**": {"retain": true, "historySize": 5, "historyTTL": "1m", "retainedTTL": "30s", "persist": true}, "/plain/*": {}}"#)

    func broker(_ table: ChannelPolicyTable = stocks, store: (any MessageStore)? = nil, clock: ManualClock = ManualClock()) -> Broker {
        var configuration = BrokerConfiguration()
        configuration.channels = table
        return Broker(configuration: configuration, store: store, clock: clock)
    }

    func offsets(_ values: [JSONValue]) -> [Int?] { values.map { $0["ext"]?["herald"]?["offset"]?.intValue } }

    @Test func optionsParsingAndSpecificity() throws {
        let table = Self.table(#"{"/a/**": {"historySize": 1}, "/a/*": {"historySize": 2}, "/a/b": {"historySize": 3}, "/a/b/**": {"historySize": 4}, "/**": {"retain": true}}"#)
        #expect(table.options(for: ChannelName("/a/b")!)?.historySize == 3)
        #expect(table.options(for: ChannelName("/a/c")!)?.historySize == 2)
        #expect(table.options(for: ChannelName("/a/b/c")!)?.historySize == 4)
        #expect(table.options(for: ChannelName("/a/c/d")!)?.historySize == 1)
        #expect(table.options(for: ChannelName("/z")!)?.retain == true)
        let durable = Self.table(#"{"/d": {"historySize": 1, "durable": true, "historyTTL": "500ms", "retainedTTL": 1500}}"#)
        let options = try #require(durable.options(for: ChannelName("/d")!))
        #expect(options.persist)
        #expect(options.historyTTLMilliseconds == 500)
        #expect(options.retainedTTLMilliseconds == 1500)
        for bad in [#"{"/a": {"retain": 1}}"#, #"{"/a": {"historySize": -1}}"#, #"{"/a": {"bogus": true}}"#, #"{"/a/*/b": {}}"#, #"{"/meta/**": {}}"#, #"{"/a": {"historyTTL": "soon"}}"#] {
            #expect(throws: ChannelPolicyTable.ParseError.self) { try ChannelPolicyTable.parse(JSONParser.parse(bad).objectValue!) }
        }
    }

    @Test func offsetsAndEpochGoInExt() {
        let b = broker()
        var sub = CoreClient(b)
        _ = sub.connected()
        _ = sub.subscribe("/stocks/AAPL")
        for p in 1...3 { _ = sub.publish("/stocks/AAPL", #"{"p":\#(p)}"#) }
        _ = sub.publish("/plain/x", "0")
        #expect(offsets(sub.pushed.prefix(3).map { $0 }) == [1, 2, 3])
        let epochs = Set(sub.pushed.prefix(3).compactMap { $0["ext"]?["herald"]?["epoch"]?.stringValue })
        #expect(epochs.count == 1)
        #expect(sub.pushed[0]["data"] == (try! JSONParser.parse(#"{"p":1}"#)))
    }

    @Test func retainedValueComesFirstThenLive() {
        let b = broker()
        var pub = CoreClient(b)
        _ = pub.connected()
        for p in 1...3 { _ = pub.publish("/stocks/AAPL", String(p)) }
        _ = pub.publish("/stocks/MSFT", "10")
        _ = pub.publish("/stocks/eu/SAP", "20")
        var exact = CoreClient(b)
        _ = exact.connected()
        _ = exact.subscribe("/stocks/AAPL")
        var single = CoreClient(b)
        _ = single.connected()
        _ = single.subscribe("/stocks/*")
        var deep = CoreClient(b)
        _ = deep.connected()
        _ = deep.subscribe("/stocks/**")
        _ = pub.publish("/stocks/AAPL", "4")
        #expect(exact.pushed.map { $0["data"] } == [.number("3"), .number("4")])
        #expect(exact.pushed[0]["ext"]?["herald"]?["retained"] == .bool(true))
        #expect(exact.pushed[1]["ext"]?["herald"]?["retained"] == nil)
        #expect(offsets(exact.pushed) == [3, 4])
        #expect(single.pushed.map { $0["channel"]?.stringValue } == ["/stocks/AAPL", "/stocks/MSFT", "/stocks/AAPL"])
        #expect(deep.pushed.map { $0["channel"]?.stringValue } == ["/stocks/AAPL", "/stocks/MSFT", "/stocks/eu/SAP", "/stocks/AAPL"])
    }

    @Test func wildcardOverTenThousandRetainedChannels() {
        let b = broker()
        for i in 0..<10_000 {
            _ = try! b.publish(ChannelName("/stocks/s\(i)")!, json: String(i))
        }
        _ = try! b.publish(ChannelName("/other/x")!, json: "0")
        var sub = CoreClient(b)
        _ = sub.connected()
        #expect(sub.subscribe("/stocks/*")["successful"] == .bool(true))
        #expect(sub.pushed.count == 10_000)
        #expect(Set(sub.pushed.compactMap { $0["data"]?.intValue }).count == 10_000)
    }

    @Test func ttlsExpireRetainedValuesAndHistory() {
        let clock = ManualClock()
        let b = broker(clock: clock)
        var pub = CoreClient(b)
        _ = pub.connected()
        _ = pub.publish("/stocks/AAPL", "1")
        clock.advance(milliseconds: 31_000)
        _ = pub.publish("/stocks/MSFT", "2")
        var late = CoreClient(b)
        _ = late.connected()
        _ = late.subscribe("/stocks/*")
        // AAPL's retained value is 31 s old: past retainedTTL (30 s), so not served as live.
        #expect(late.pushed.map { $0["channel"]?.stringValue } == ["/stocks/MSFT"])
        // History keeps AAPL's message until historyTTL (1 min).
        var replay = CoreClient(b)
        _ = replay.connected()
        _ = replay.subscribe("/stocks/AAPL", replay: "-2")
        #expect(replay.pushed.map { $0["data"] } == [.number("1")])
        clock.advance(milliseconds: 30_000)
        b.expireSessions()
        var after = CoreClient(b)
        _ = after.connected()
        _ = after.subscribe("/stocks/AAPL", replay: "-2")
        #expect(after.pushed.isEmpty)
    }

    @Test func replayPositions() throws {
        let b = broker()
        var pub = CoreClient(b)
        _ = pub.connected()
        for p in 1...8 { _ = pub.publish("/stocks/AAPL", String(p)) }
        func subscribe(_ replay: String) -> (JSONValue, [JSONValue]) {
            var c = CoreClient(b)
            _ = c.connected()
            let reply = c.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(c.clientId)","subscription":"/stocks/AAPL","ext":{"replay":{"/stocks/AAPL":\#(replay)}}}]"#)
            return (reply, c.pushed)
        }
        let (newOnly, none) = subscribe("-1")
        #expect(newOnly["successful"] == .bool(true))
        #expect(none.isEmpty)
        // -2: all of history (size 5), oldest first.
        let (all, history) = subscribe("-2")
        #expect(all["ext"]?["herald"]?["recovered"] == .bool(true))
        #expect(offsets(history) == [4, 5, 6, 7, 8])
        let epoch = try #require(history[0]["ext"]?["herald"]?["epoch"]?.stringValue)
        #expect(offsets(subscribe("6").1) == [7, 8])
        #expect(offsets(subscribe(#"{"offset":3,"epoch":"\#(epoch)"}"#).1) == [4, 5, 6, 7, 8])
        #expect(subscribe("8").1.isEmpty)

        let (expired, nothing) = subscribe("2")
        #expect(expired["successful"] == .bool(false))
        #expect(expired["error"] == .string("410:/stocks/AAPL,2:Replay position expired"))
        #expect(expired["ext"]?["herald"]?["recovered"] == .bool(false))
        #expect(expired["ext"]?["herald"]?["oldestOffset"] == .number("4"))
        #expect(expired["ext"]?["herald"]?["latestOffset"] == .number("8"))
        #expect(nothing.isEmpty)
        #expect(subscribe("9").0["error"] == .string("410:/stocks/AAPL,9:Replay position unknown"))

        let (otherEpoch, _) = subscribe(#"{"offset":7,"epoch":"feedface"}"#)
        #expect(otherEpoch["error"] == .string("409:/stocks/AAPL,feedface:Epoch changed"))
        #expect(otherEpoch["ext"]?["herald"]?["epoch"] == .string(epoch))
        #expect(subscribe(#""x""#).0["error"] == .string("400:/stocks/AAPL:Invalid replay position"))
    }

    /// `"ext":{"herald":{"positions":true}}` on a subscribe: the reply says, per channel with
    /// history, the position everything the subscription receives comes after, so that a client
    /// that loses its connection before its first message resumes without a gap.
    @Test func subscribeRepliesSayWhereTheSubscriptionStarts() throws {
        let b = broker(Self.table(#"{"/stocks/**": {"retain": true, "historySize": 5}, "/h/**": {"historySize": 3}, "/r/**": {"retain": true}}"#))
        var pub = CoreClient(b)
        _ = pub.connected()
        for p in 1...4 { _ = pub.publish("/stocks/AAPL", String(p)) }
        for p in 1...2 { _ = pub.publish("/h/a", String(p)) }
        _ = pub.publish("/r/x", "1")
        func positions(_ subscription: String, replay: String? = nil, ask: Bool = true) -> (JSONValue, [JSONValue]) {
            var c = CoreClient(b)
            _ = c.connected()
            var ext: [String] = []
            if ask { ext.append(#""herald":{"positions":true}"#) }
            if let replay { ext.append(#""replay":\#(replay)"#) }
            let reply = c.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(c.clientId)","subscription":\#(subscription),"ext":{\#(ext.joined(separator: ","))}}]"#)
            #expect(reply["successful"] == .bool(true))
            return (reply["ext"]?["herald"]?["positions"] ?? .null, c.pushed)
        }
        func position(_ value: JSONValue, _ channel: String) -> Int? { value[channel]?["offset"]?.intValue }

        // The retained value (offset 4) comes first: the subscription starts after 3.
        let (retained, pushed) = positions(#""/stocks/AAPL""#)
        #expect(position(retained, "/stocks/AAPL") == 3)
        #expect(offsets(pushed) == [4])
        let epoch = try #require(pushed.first?["ext"]?["herald"]?["epoch"]?.stringValue)
        #expect(retained["/stocks/AAPL"]?["epoch"] == .string(epoch))
        // -1 (new only): after the latest; a replay: after its position.
        #expect(position(positions(#""/stocks/AAPL""#, replay: #"{"/stocks/AAPL":-1}"#).0, "/stocks/AAPL") == 4)
        #expect(position(positions(#""/stocks/AAPL""#, replay: #"{"/stocks/AAPL":1}"#).0, "/stocks/AAPL") == 1)
        // A wildcard lists the channels with history that exist; no retained value: the latest.
        let (wildcard, _) = positions(#""/h/*""#)
        #expect(position(wildcard, "/h/a") == 2)
        #expect(wildcard.objectValue?.members.count == 1)
        // A channel name with history and no message yet gets its log (offset 0) now.
        let (fresh, _) = positions(#""/h/new""#)
        #expect(position(fresh, "/h/new") == 0)
        #expect(fresh["/h/new"]?["epoch"]?.stringValue?.count == 16)
        _ = pub.publish("/h/new", "1")
        #expect(offsets(positions(#""/h/new""#, replay: #"{"/h/new":{"offset":0,"epoch":"\#(fresh["/h/new"]!["epoch"]!.stringValue!)"}}"#).1) == [1])
        // No history, no position; not asked, not given.
        #expect(positions(#"["/r/x","/plain/y"]"#).0.objectValue?.isEmpty == true)
        #expect(positions(#""/stocks/AAPL""#, ask: false).0 == .null)
    }

    @Test func replayRefusalsForWildcardsAndChannelsWithoutHistory() {
        let b = broker(Self.table(#"{"/r/**": {"retain": true}, "/h/**": {"historySize": 3}}"#))
        var c = CoreClient(b)
        _ = c.connected()
        let wildcard = c.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(c.clientId)","subscription":"/h/*","ext":{"replay":{"/h/*":-2}}}]"#)
        #expect(wildcard["error"] == .string("400:/h/*:Replay needs a channel name, not a wildcard"))
        let noHistory = c.subscribe("/r/x", replay: "-2")
        #expect(noHistory["error"] == .string("400:/r/x:Channel keeps no history"))
        #expect(b.subscriptionCount == 0)
    }

    @Test func handshakeReplayAppliesToLaterSubscribes() {
        let b = broker()
        var pub = CoreClient(b)
        _ = pub.connected()
        for p in 1...3 { _ = pub.publish("/stocks/AAPL", String(p)) }
        var c = CoreClient(b)
        let hs = c.sendOne(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"ext":{"replay":{"/stocks/AAPL":1}}}]"#)
        #expect(hs["ext"]?["replay"] == .bool(true))
        c.clientId = hs["clientId"]!.stringValue!
        _ = c.connect()
        #expect(c.subscribe("/stocks/AAPL")["successful"] == .bool(true))
        #expect(offsets(c.pushed) == [2, 3])
        // The handshake's position is used once: subscribing again later is a plain
        // subscribe (the retained value), not a second replay of the same messages.
        #expect(c.unsubscribe("/stocks/AAPL")["successful"] == .bool(true))
        #expect(c.subscribe("/stocks/AAPL")["successful"] == .bool(true))
        #expect(offsets(c.pushed) == [2, 3, 3])
        #expect(c.pushed.last?["ext"]?["herald"]?["retained"] == .bool(true))
    }

    /// A restarted broker on the same store serves the same retained values and history, in
    /// the same epoch, and continues the offsets.
    @Test(arguments: [true, false])
    func restartRestoresState(cleanShutdown: Bool) async throws {
        let store = InMemoryMessageStore()
        let first = broker(store: store)
        try await first.restore()
        let writer = Task { await first.runStoreWriter() }
        var pub = CoreClient(first)
        _ = pub.connected()
        for p in 1...3 { _ = pub.publish("/stocks/AAPL", String(p)) }
        _ = pub.publish("/plain/x", "0")
        let epoch = pub.connection.pushed.first?["ext"]?["herald"]?["epoch"]
        if cleanShutdown {
            await first.closeStore()
        } else {
            // Let the writer commit, then "crash".
            while first.storeStatistics.writes < 3 { try await Task.sleep(for: .milliseconds(5)) }
            store.crash()
        }
        writer.cancel()

        let second = broker(store: store)
        try await second.restore()
        var sub = CoreClient(second)
        _ = sub.connected()
        let reply = sub.subscribe("/stocks/AAPL", replay: "-2")
        #expect(reply["successful"] == .bool(true))
        #expect(offsets(sub.pushed) == [1, 2, 3])
        _ = epoch
        var retained = CoreClient(second)
        _ = retained.connected()
        _ = retained.subscribe("/stocks/*")
        #expect(retained.pushed.map { $0["data"] } == [.number("3")])
        _ = sub.publish("/stocks/AAPL", "4")
        let next = sub.pushed.last?["ext"]?["herald"]?["offset"]?.intValue
        #expect(next == (cleanShutdown ? 4 : 4 + Int(Broker.offsetGapAfterCrash)))
        #expect(sub.pushed.last?["ext"]?["herald"]?["epoch"] == sub.pushed.first?["ext"]?["herald"]?["epoch"])
    }

    /// History from before a crash survives the next restart, on SQLite: offsets jump after
    /// the crash, and the store must trim history where the broker does (by count), not to the
    /// newest offsets, which would drop everything from before the jump.
    @Test func historyFromBeforeACrashSurvivesTheNextRestart() async throws {
        let path = NSTemporaryDirectory() + "herald-gap-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }

        // Run 1: three publishes, committed, then a crash: the store is never closed.
        let first = broker(store: SQLiteMessageStore(path: path))
        try await first.restore()
        let firstWriter = Task { await first.runStoreWriter() }
        var pub = CoreClient(first)
        _ = pub.connected()
        for p in 1...3 { _ = pub.publish("/stocks/AAPL", String(p)) }
        while first.storeStatistics.writes < 3 { try await Task.sleep(for: .milliseconds(5)) }
        firstWriter.cancel()

        // Run 2: one publish after the offset gap, then a clean shutdown.
        let second = broker(store: SQLiteMessageStore(path: path))
        try await second.restore()
        let secondWriter = Task { await second.runStoreWriter() }
        var pub2 = CoreClient(second)
        _ = pub2.connected()
        _ = pub2.publish("/stocks/AAPL", "4")
        await second.closeStore()
        secondWriter.cancel()

        // Run 3: all four are history (the channel keeps 5).
        let third = broker(store: SQLiteMessageStore(path: path))
        try await third.restore()
        var sub = CoreClient(third)
        _ = sub.connected()
        let reply = sub.subscribe("/stocks/AAPL", replay: "-2")
        #expect(reply["successful"] == .bool(true))
        #expect(offsets(sub.pushed) == [1, 2, 3, 1 + 3 + Int(Broker.offsetGapAfterCrash)])
        #expect(sub.pushed.map { $0["data"] } == ["1", "2", "3", "4"].map { .number($0) })
        await third.closeStore()
    }

    @Test func durablePublishRepliesAfterCommit() async throws {
        let store = InMemoryMessageStore()
        let b = broker(Self.table(#"{"/orders/*": {"historySize": 10, "durable": true}}"#), store: store)
        try await b.restore()
        var c = CoreClient(b)
        _ = c.connected()
        let (replies, result) = c.send(#"[{"channel":"/orders/1","clientId":"\#(c.clientId)","data":1,"id":"a"},{"channel":"/orders/2","clientId":"\#(c.clientId)","data":2,"id":"b"}]"#)
        #expect(replies.count == 2)
        let gate = try #require(result.commitGate)
        // Nothing committed yet: the writer has not run.
        #expect(store.commitCount == 0)
        let committed = AsyncStream<[Int: ByteBuffer]>.makeStream()
        gate.whenCommitted { committed.continuation.yield($0); committed.continuation.finish() }
        let writer = Task { await b.runStoreWriter() }
        var iterator = committed.stream.makeAsyncIterator()
        let replacements = await iterator.next()
        #expect(replacements?.isEmpty == true)
        // Group commit: both publishes in one write.
        #expect(store.commitCount == 1)
        await b.closeStore()
        writer.cancel()
    }

    /// A durable message reaches subscribers, history and the retained value only once it is
    /// committed; one whose commit fails is answered 407 and is seen by no one.
    @Test func durableMessagesAreDeliveredOnlyOnceCommitted() async throws {
        let store = InMemoryMessageStore()
        let b = broker(Self.table(#"{"/orders/*": {"historySize": 10, "retain": true, "durable": true}}"#), store: store)
        try await b.restore()
        var sub = CoreClient(b)
        _ = sub.connected()
        _ = sub.subscribe("/orders/1")
        var pub = CoreClient(b)
        _ = pub.connected()

        func publish(_ data: Int, id: String) async throws -> [Int: ByteBuffer] {
            let (_, result) = pub.send(#"[{"channel":"/orders/1","clientId":"\#(pub.clientId)","data":\#(data),"id":"\#(id)"}]"#)
            let gate = try #require(result.commitGate)
            let committed = AsyncStream<[Int: ByteBuffer]>.makeStream()
            gate.whenCommitted { committed.continuation.yield($0); committed.continuation.finish() }
            var iterator = committed.stream.makeAsyncIterator()
            return try #require(await iterator.next())
        }

        // Not committed: no delivery before the commit, and none after it failed.
        store.failNextWrites(1)
        let writer = Task { await b.runStoreWriter() }
        let failed = try await publish(1, id: "a")
        #expect(failed[0].map { String(buffer: $0) }?.contains(#""error":"407:"#) == true)
        #expect(sub.pushed.isEmpty)

        // Committed: delivered, with the next offset (the failed one's stays unused).
        let succeeded = try await publish(2, id: "b")
        #expect(succeeded.isEmpty)
        #expect(sub.pushed.map { $0["data"] } == [.number("2")])
        #expect(offsets(sub.pushed) == [2])

        // History and the retained value hold the committed message only.
        var late = CoreClient(b)
        _ = late.connected()
        _ = late.subscribe("/orders/*")
        #expect(late.pushed.map { $0["data"] } == [.number("2")])
        var replayer = CoreClient(b)
        _ = replayer.connected()
        let reply = replayer.subscribe("/orders/1", replay: "-2")
        #expect(reply["successful"] == .bool(true))
        #expect(offsets(replayer.pushed) == [2])
        await b.closeStore()
        writer.cancel()
    }

    /// Durable messages in flight together are trimmed as one history: the store keeps the
    /// newest `historySize` of them, as memory does.
    @Test func durableMessagesInFlightKeepTheHistorySize() async throws {
        let store = InMemoryMessageStore()
        let table = Self.table(#"{"/orders/*": {"historySize": 2, "durable": true}}"#)
        let first = broker(table, store: store)
        try await first.restore()
        var pub = CoreClient(first)
        _ = pub.connected()
        let batch = (1...3).map { #"{"channel":"/orders/1","clientId":"\#(pub.clientId)","data":\#($0),"id":"\#($0)"}"# }.joined(separator: ",")
        let (_, result) = pub.send("[\(batch)]")
        #expect(result.commitGate != nil)
        let writer = Task { await first.runStoreWriter() }
        await first.closeStore()
        writer.cancel()

        let second = broker(table, store: store)
        try await second.restore()
        var replayer = CoreClient(second)
        _ = replayer.connected()
        let reply = replayer.subscribe("/orders/1", replay: "-2")
        #expect(reply["successful"] == .bool(true))
        #expect(offsets(replayer.pushed) == [2, 3])
    }

    /// What an extension adds to a delivery's `ext` is kept with the message: its retained and
    /// replayed copies carry it too, after a restart included.
    @Test func retainedAndReplayedCopiesKeepTheExtensionsExt() async throws {
        struct Stamp: BayeuxExtension {
            func outgoingDelivery(_ delivery: inout Delivery) {
                var ext = delivery.ext ?? JSONObject()
                ext["stamp"] = .string("s-" + String(buffer: delivery.data))
                delivery.ext = ext
            }
        }
        let store = InMemoryMessageStore()
        let first = broker(store: store)
        first.addExtension(Stamp())
        try await first.restore()
        let writer = Task { await first.runStoreWriter() }
        var pub = CoreClient(first)
        _ = pub.connected()
        for p in 1...2 { _ = pub.publish("/stocks/AAPL", String(p)) }
        await first.closeStore()
        writer.cancel()

        for b in [first, broker(store: store)] {
            if b !== first { try await b.restore() }
            var retained = CoreClient(b)
            _ = retained.connected()
            _ = retained.subscribe("/stocks/*")
            #expect(retained.pushed.map { $0["ext"]?["stamp"] } == [.string("s-2")])
            #expect(retained.pushed.first?["ext"]?["herald"]?["retained"] == .bool(true))
            var replayer = CoreClient(b)
            _ = replayer.connected()
            _ = replayer.subscribe("/stocks/AAPL", replay: "-2")
            #expect(replayer.pushed.map { $0["ext"]?["stamp"] } == [.string("s-1"), .string("s-2")])
            #expect(offsets(replayer.pushed) == [1, 2])
        }
    }

    /// Once the store is closing, publishes to persisted channels are refused, durable or not,
    /// and reach no one: they could not be kept, and the next start would reuse their offsets.
    @Test(arguments: [false, true])
    func publishesToPersistedChannelsAreRefusedOnceTheStoreCloses(durable: Bool) async throws {
        let store = InMemoryMessageStore()
        let b = broker(Self.table(#"{"/stocks/*": {"historySize": 5, "persist": true, "durable": \#(durable)}, "/plain/*": {}}"#), store: store)
        try await b.restore()
        let writer = Task { await b.runStoreWriter() }
        var sub = CoreClient(b)
        _ = sub.connected()
        _ = sub.subscribe("/stocks/AAPL")
        _ = sub.subscribe("/plain/x")
        await b.closeStore()
        writer.cancel()
        var pub = CoreClient(b)
        _ = pub.connected()
        let reply = pub.publish("/stocks/AAPL", "1")
        #expect(reply["successful"] == .bool(false))
        #expect(reply["error"] == .string("407::Failed to publish: the server is shutting down"))
        // Channels without a log are not affected.
        #expect(pub.publish("/plain/x", "2")["successful"] == .bool(true))
        #expect(sub.pushed.map { $0["data"] } == [.number("2")])
    }

    /// Publishes to ever new channel names cannot grow the logs without bound: past
    /// `maxLoggedChannels`, a publish that would start a log is refused, and so is a replay
    /// that would; the channels that have one go on as before.
    @Test func loggedChannelsAreBounded() {
        let b = Broker(configuration: {
            var configuration = BrokerConfiguration()
            configuration.channels = Self.stocks
            configuration.maxLoggedChannels = 3
            return configuration
        }(), clock: ManualClock())
        var sub = CoreClient(b)
        _ = sub.connected()
        _ = sub.subscribe("/stocks/*")
        var pub = CoreClient(b)
        _ = pub.connected()
        for (i, name) in ["A", "B", "C"].enumerated() {
            #expect(pub.publish("/stocks/\(name)", String(i))["successful"] == .bool(true))
        }
        let refused = pub.publish("/stocks/D", "3")
        #expect(refused["successful"] == .bool(false))
        #expect(refused["error"] == .string("503:3:Too many channels with retained values or history"))
        #expect(pub.publish("/stocks/A", "4")["successful"] == .bool(true))
        #expect(sub.pushed.map { $0["channel"] } == ["/stocks/A", "/stocks/B", "/stocks/C", "/stocks/A"].map { .string($0) })
        let replay = sub.subscribe("/stocks/E", replay: "-2")
        #expect(replay["error"] == .string("503:3:Too many channels with retained values or history"))
        // Channels without options need no log and are not limited.
        #expect(pub.publish("/plain/x", "5")["successful"] == .bool(true))
    }

    /// A store writer whose task was cancelled (a cancelled `BrokerService`) has stopped; what
    /// is published after that, until the store closes, is still committed by `closeStore()`.
    @Test func writesQueuedAfterTheWriterWasCancelledAreCommittedOnClose() async throws {
        let store = InMemoryMessageStore()
        let first = broker(store: store)
        try await first.restore()
        let writer = Task { await first.runStoreWriter() }
        var pub = CoreClient(first)
        _ = pub.connected()
        _ = pub.publish("/stocks/AAPL", "1")
        while first.storeStatistics.writes < 1 { try await Task.sleep(for: .milliseconds(5)) }
        writer.cancel()
        await writer.value
        for p in 2...3 { _ = pub.publish("/stocks/AAPL", String(p)) }
        await first.closeStore()
        #expect(first.storeStatistics.writes == 3)

        let second = broker(store: store)
        try await second.restore()
        var sub = CoreClient(second)
        _ = sub.connected()
        _ = sub.subscribe("/stocks/AAPL", replay: "-2")
        #expect(sub.pushed.map { $0["data"] } == [.int(1), .int(2), .int(3)])
    }
}
