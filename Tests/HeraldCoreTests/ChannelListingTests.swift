import HeraldCore
import HeraldProtocol
import Testing

/// The admin API's channel listing (`Broker.channels(matching:after:limit:)`): pages in name
/// order from a kept sorted listing, which must follow channels as they appear and go.
@Suite struct ChannelListingTests {
    func broker() -> Broker {
        var configuration = BrokerConfiguration()
        configuration.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"{"/log/**": {"retain": true}}"#).objectValue!)
        return Broker(configuration: configuration, clock: ManualClock())
    }

    /// Every page of the listing, with `limit` names each, followed by cursor.
    func allPages(_ broker: Broker, pattern: String? = nil, limit: Int) -> [String] {
        var names: [String] = []
        var cursor: String?
        while true {
            let page = broker.channels(matching: pattern.flatMap(ChannelPattern.init), after: cursor, limit: limit)
            names += page.channels.map(\.name)
            guard page.more else { return names }
            cursor = page.last
        }
    }

    // Names whose string order and segment order differ ("/log/9/a" < "/log/99" < "/log/9x"),
    // so a prefix search that stopped at the wrong place would lose or repeat some.
    static let logged = ["/log/9", "/log/99", "/log/9x", "/log/9/a", "/log/9/a/b", "/log/a-b", "/log/a/b", "/log/a", "/log/b"]

    @Test func pagesFollowNameOrderWithCursorsAndPatterns() {
        let b = broker()
        var publisher = CoreClient(b)
        _ = publisher.connected()
        for name in Self.logged { #expect(publisher.publish(name, "1")["successful"] == .bool(true)) }
        var subscriber = CoreClient(b)
        _ = subscriber.connected()
        for subscription in ["/sub/x", "/log/9", "/log/**", "/sub/*"] { #expect(subscriber.subscribe(subscription)["successful"] == .bool(true)) }
        // Wildcard subscriptions are not channels; exact-name ones are.
        let expected = Set(Self.logged + ["/sub/x"]).sorted()
        for limit in [1, 2, 3, 100] {
            #expect(allPages(b, limit: limit) == expected, "limit \(limit)")
        }
        for pattern in ["/log/9/**", "/log/9/*", "/log/*", "/log/9", "/log/**", "/sub/*", "/**", "/nothing/**", "/log/9x/**"] {
            let matcher = ChannelPattern(pattern)!
            let brute = expected.filter { matcher.matches(ChannelName($0)!) }
            for limit in [1, 2, 100] {
                #expect(allPages(b, pattern: pattern, limit: limit) == brute, "pattern \(pattern), limit \(limit)")
            }
        }
        // A cursor that is not a channel name starts after where it would sort.
        #expect(b.channels(matching: nil, after: "/log/9/zzz", limit: 2).channels.map(\.name) == ["/log/99", "/log/9x"])
        #expect(b.channels(matching: nil, after: "/zzz", limit: 2).channels.isEmpty)
        #expect(b.channels(matching: nil, after: nil, limit: 3).more)
        #expect(!b.channels(matching: ChannelPattern("/sub/*"), after: nil, limit: 1).more)
    }

    @Test func theListingFollowsChannelsThatAppearAndGo() {
        let b = broker()
        var client = CoreClient(b)
        _ = client.connected()
        _ = client.subscribe("/sub/x")
        _ = client.publish("/log/a", "1")
        #expect(allPages(b, limit: 10) == ["/log/a", "/sub/x"])
        // A new log, a new exact subscription, and the last subscriber of a channel leaving.
        _ = client.publish("/log/0", "1")
        #expect(allPages(b, limit: 10) == ["/log/0", "/log/a", "/sub/x"])
        _ = client.subscribe("/sub/y")
        #expect(allPages(b, limit: 10) == ["/log/0", "/log/a", "/sub/x", "/sub/y"])
        _ = client.unsubscribe("/sub/x")
        #expect(allPages(b, limit: 10) == ["/log/0", "/log/a", "/sub/y"])
        // A second subscriber of a listed channel changes nothing; its leaving neither.
        var other = CoreClient(b)
        _ = other.connected()
        _ = other.subscribe("/sub/y")
        _ = other.unsubscribe("/sub/y")
        #expect(allPages(b, limit: 10) == ["/log/0", "/log/a", "/sub/y"])
        #expect(b.busiestChannels(matching: nil, limit: 1).map(\.name) == ["/sub/y"])
    }
}
