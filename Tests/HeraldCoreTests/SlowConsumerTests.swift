import HeraldCore
import HeraldProtocol
import NIOCore
import Testing

/// Slow-consumer policies and rate limits, with stalled in-memory connections and a manual clock.
@Suite struct SlowConsumerTests {
    func broker(_ channels: String, maxPending: Int = 4_000, clock: ManualClock = ManualClock()) -> Broker {
        var configuration = BrokerConfiguration()
        configuration.channels = try! ChannelPolicyTable.parse(JSONParser.parse(channels).objectValue!)
        configuration.maxPendingBytesPerSession = maxPending
        return Broker(configuration: configuration, clock: clock)
    }

    func drained(_ client: CoreClient, _ broker: Broker) -> [JSONValue] {
        let session = broker.session(id: client.clientId)!
        client.connection.drain(session)
        return client.pushed
    }

    let pad = String(repeating: "x", count: 200)

    /// With 5 channels and with 40 (past `ConflationIndex.smallLimit`, where the session's
    /// index of pending channels changes representation).
    @Test(arguments: [5, 40])
    func conflateKeepsTheLatestPerChannelAndFastSubscribersLoseNothing(channels: Int) {
        let b = broker(#"{"/px/*": {"slowConsumer": "conflate"}}"#)
        var slow = CoreClient(b, connection: MemoryConnection(drainsImmediately: false))
        _ = slow.connected()
        _ = slow.subscribe("/px/*")
        var fast = CoreClient(b)
        _ = fast.connected()
        _ = fast.subscribe("/px/*")
        var pub = CoreClient(b)
        _ = pub.connected()
        for n in 0..<500 {
            _ = pub.publish("/px/s\(n % channels)", #"{"n":\#(n),"pad":"\#(pad)"}"#)
        }
        let session = b.session(id: slow.clientId)!
        // Still connected, and bounded: at most one pending message per channel past the limit.
        #expect(!session.isClosed)
        #expect(session.pendingBytes <= 4_000 + channels * 300)
        #expect(b.counters.dropped.load(ordering: .relaxed) > 0)
        // Counted for the session too (as the admin API shows it), and only for the slow one.
        #expect(session.droppedMessages == b.counters.dropped.load(ordering: .relaxed))
        #expect(b.session(id: fast.clientId)!.droppedMessages == 0)
        let got = drained(slow, b)
        var latest: [String: Int] = [:]
        for message in got { latest[message["channel"]!.stringValue!] = message["data"]?["n"]?.intValue }
        // Each channel's latest: the last n below 500 with its remainder.
        #expect(latest == Dictionary(uniqueKeysWithValues: (0..<channels).map { k in ("/px/s\(k)", (500 - 1 - k) / channels * channels + k) }))
        #expect(fast.pushed.map { $0["data"]?["n"]?.intValue } == (0..<500).map { $0 })
    }

    @Test func aCongestedConnectionConflatesAtOnce() {
        let b = broker(#"{"/px/*": {"slowConsumer": "conflate"}}"#, maxPending: 1 << 20)
        var slow = CoreClient(b, connection: MemoryConnection(drainsImmediately: false))
        _ = slow.connected()
        _ = slow.subscribe("/px/*")
        let session = b.session(id: slow.clientId)!
        var pub = CoreClient(b)
        _ = pub.connected()
        _ = pub.publish("/px/a", "1")
        session.markCongested()
        _ = pub.publish("/px/a", "2")
        _ = pub.publish("/px/b", "3")
        _ = pub.publish("/px/a", "4")
        #expect(drained(slow, b).map { $0["data"] } == [.number("4"), .number("3")])
    }

    @Test func dropOldestKeepsTheNewestWithinTheLimit() {
        let b = broker(#"{"/log/*": {"slowConsumer": "dropOldest"}}"#)
        var slow = CoreClient(b, connection: MemoryConnection(drainsImmediately: false))
        _ = slow.connected()
        _ = slow.subscribe("/log/*")
        var pub = CoreClient(b)
        _ = pub.connected()
        for n in 0..<100 { _ = pub.publish("/log/a", #"{"n":\#(n),"pad":"\#(pad)"}"#) }
        let session = b.session(id: slow.clientId)!
        #expect(!session.isClosed)
        #expect(session.pendingBytes <= 4_000)
        let got = drained(slow, b).compactMap { $0["data"]?["n"]?.intValue }
        #expect(got.last == 99)
        #expect(got == Array(got.first!...99))
        #expect(b.counters.dropped.load(ordering: .relaxed) == 100 - got.count)
        #expect(session.droppedMessages == 100 - got.count)
    }

    @Test func disconnectIsTheDefault() {
        let b = broker(#"{"/other/*": {"retain": true}}"#)
        var slow = CoreClient(b, connection: MemoryConnection(drainsImmediately: false))
        _ = slow.connected()
        _ = slow.subscribe("/log/*")
        var pub = CoreClient(b)
        _ = pub.connected()
        for n in 0..<100 { _ = pub.publish("/log/a", #"{"n":\#(n),"pad":"\#(pad)"}"#) }
        #expect(slow.connection.state.withLock { $0.closedReason } == .slowConsumer)
    }

    @Test func maxFrequencyPerSubscriptionSendsTheLatestAtTheCap() {
        let clock = ManualClock()
        let b = broker(#"{}"#, clock: clock)
        var sub = CoreClient(b)
        _ = sub.connected()
        let reply = sub.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(sub.clientId)","subscription":"/q/*","ext":{"herald":{"maxFrequency":2}}}]"#)
        #expect(reply["successful"] == .bool(true))
        var other = CoreClient(b)
        _ = other.connected()
        _ = other.subscribe("/q/*")
        var pub = CoreClient(b)
        _ = pub.connected()
        // 100 updates a second for 2 seconds, on two channels.
        for n in 0..<200 {
            _ = pub.publish("/q/\(n % 2 == 0 ? "a" : "b")", String(n))
            clock.advance(milliseconds: 10)
            b.releaseThrottled()
        }
        clock.advance(milliseconds: 500)
        b.releaseThrottled()
        let a = sub.pushed.filter { $0["channel"] == .string("/q/a") }.compactMap { $0["data"]?.intValue }
        let bb = sub.pushed.filter { $0["channel"] == .string("/q/b") }.compactMap { $0["data"]?.intValue }
        // At most 2 a second per channel over 2.5 s (plus the first, sent at once).
        #expect(a.count >= 4 && a.count <= 6)
        #expect(bb.count >= 4 && bb.count <= 6)
        #expect(a.last == 198)
        #expect(bb.last == 199)
        #expect(a == a.sorted())
        // The unthrottled subscriber got everything.
        #expect(other.pushed.count == 200)
        #expect(sub.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(sub.clientId)","subscription":"/z","ext":{"herald":{"maxFrequency":0}}}]"#)["error"] == .string("400:maxFrequency:Invalid parameter"))
    }

    /// A rate-limited subscriber of a wildcard remembers when it last got each channel; over
    /// ever new channel names that table is pruned of entries whose interval has passed.
    @Test func rateLimitMemoryIsBoundedOverManyChannels() {
        let clock = ManualClock()
        let b = broker(#"{}"#, clock: clock)
        var sub = CoreClient(b)
        _ = sub.connected()
        _ = sub.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(sub.clientId)","subscription":"/q/**","ext":{"herald":{"maxFrequency":10}}}]"#)
        var pub = CoreClient(b)
        _ = pub.connected()
        // 20,000 channels, one publish each, 1 ms apart: only the last 100 ms (100 channels)
        // are still within the 100 ms interval.
        for n in 0..<20_000 {
            _ = pub.publish("/q/c\(n)", String(n))
            clock.advance(milliseconds: 1)
        }
        let session = b.session(id: sub.clientId)!
        #expect(session.rateLimitedChannelCount <= 2_048)
        #expect(drained(sub, b).count == 20_000)
    }

    /// Held-back messages count toward `maxPendingBytesPerSession`: a rate-limited wildcard
    /// subscriber holding one message for each of ever more channels meets its channel's
    /// slow-consumer policy (disconnect) instead of growing without bound.
    @Test func heldBackMessagesCountTowardThePendingLimit() {
        let clock = ManualClock()
        let b = broker(#"{}"#, maxPending: 4_000, clock: clock)
        var sub = CoreClient(b)
        _ = sub.connected()
        _ = sub.sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(sub.clientId)","subscription":"/q/**","ext":{"herald":{"maxFrequency":1}}}]"#)
        var pub = CoreClient(b)
        _ = pub.connected()
        let pad = String(repeating: "x", count: 100)
        for n in 0..<100 {
            for _ in 0..<2 { _ = pub.publish("/q/c\(n)", "\"\(pad)\"") }
        }
        #expect(b.counters.slowConsumers.load(ordering: .relaxed) == 1)
        #expect(b.session(id: sub.clientId) == nil)
        // Each channel's first message was delivered until then.
        #expect(sub.pushed.count >= 20 && sub.pushed.count < 100)
    }

    @Test func maxFrequencyByChannelPattern() {
        let clock = ManualClock()
        let b = broker(#"{"/slow/**": {"maxFrequency": 1}}"#, clock: clock)
        var sub = CoreClient(b)
        _ = sub.connected()
        _ = sub.subscribe("/slow/x")
        var pub = CoreClient(b)
        _ = pub.connected()
        for n in 0..<10 { _ = pub.publish("/slow/x", String(n)) }
        #expect(sub.pushed.map { $0["data"] } == [.number("0")])
        clock.advance(milliseconds: 1_000)
        b.releaseThrottled()
        #expect(sub.pushed.map { $0["data"] } == [.number("0"), .number("9")])
        b.releaseThrottled()
        #expect(sub.pushed.count == 2)
    }

    @Test func policiesParse() throws {
        let table = try ChannelPolicyTable.parse(JSONParser.parse(#"{"/a": {"slowConsumer": "dropOldest", "maxFrequency": 2.5}}"#).objectValue!)
        #expect(table.options(for: ChannelName("/a")!)?.slowConsumer == .dropOldest)
        #expect(table.options(for: ChannelName("/a")!)?.maxFrequency == 2.5)
        #expect(throws: ChannelPolicyTable.ParseError.self) { try ChannelPolicyTable.parse(JSONParser.parse(#"{"/a": {"slowConsumer": "ignore"}}"#).objectValue!) }
        #expect(throws: ChannelPolicyTable.ParseError.self) { try ChannelPolicyTable.parse(JSONParser.parse(#"{"/a": {"maxFrequency": 0}}"#).objectValue!) }
    }
}
