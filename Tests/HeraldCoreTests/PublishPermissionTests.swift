import HeraldCore
import HeraldProtocol
import NIOCore
import Testing

/// Channel option `publish: server` (issue 12): a price feed's channels take publishes from
/// the server side only, so that no client can publish a fake price.
@Suite struct PublishPermissionTests {
    static func broker(_ channels: String) -> Broker {
        var configuration = BrokerConfiguration()
        configuration.channels = try! ChannelPolicyTable.parse(JSONParser.parse(channels).objectValue!)
        return Broker(configuration: configuration)
    }

    @Test func clientsCannotPublishToServerChannels() throws {
        let broker = Self.broker(#"{"/stocks/**": {"publish": "server"}, "/stocks/AAPL": {"retain": true}, "/stocks/open/*": {"publish": "anyone"}}"#)
        var subscriber = CoreClient(broker)
        _ = subscriber.connected()
        _ = subscriber.subscribe("/stocks/**")
        var publisher = CoreClient(broker)
        _ = publisher.connected()

        let refused = publisher.publish("/stocks/MSFT", "1")
        #expect(refused["successful"] == .bool(false))
        #expect(refused["error"] == .string("403:/stocks/MSFT:Publish not allowed"))
        // A more specific entry that does not set `publish` does not lift the restriction.
        #expect(publisher.publish("/stocks/AAPL", "1")["error"] == .string("403:/stocks/AAPL:Publish not allowed"))
        #expect(broker.limits.count(.channelPermission) == 2)
        // One that sets it does.
        #expect(publisher.publish("/stocks/open/x", "1")["successful"] == .bool(true))
        // Other channels are unaffected.
        #expect(publisher.publish("/news", "1")["successful"] == .bool(true))

        // The server side publishes, and the subscriber gets that and nothing refused.
        _ = try broker.publish(ChannelName("/stocks/AAPL")!, json: "189.5")
        let channels = subscriber.pushed.compactMap { $0["channel"]?.stringValue }
        #expect(channels == ["/stocks/open/x", "/stocks/AAPL"])
    }

    /// Services answer their sender and broadcast nothing: `/**: server` leaves them alone.
    @Test func servicesAreNotBroadcasts() {
        let broker = Self.broker(#"{"/**": {"publish": "server"}}"#)
        var client = CoreClient(broker)
        _ = client.connected()
        #expect(client.publish("/service/echo", "1")["successful"] == .bool(true))
        #expect(client.publish("/any", "1")["error"] == .string("403:/any:Publish not allowed"))
    }

    @Test func theOptionIsChecked() {
        for bad in [#"{"/a": {"publish": "everyone"}}"#, #"{"/a": {"publish": true}}"#] {
            #expect(throws: ChannelPolicyTable.ParseError.self) { try ChannelPolicyTable.parse(JSONParser.parse(bad).objectValue!) }
        }
        #expect(throws: Never.self) { try ChannelPolicyTable.parse(JSONParser.parse(#"{"/a": {"publish": "authenticated"}}"#).objectValue!) }
    }

    /// `publish: authenticated` and a token's `channels` claim: publishes within the claim,
    /// subscriptions whose every possible channel is within it.
    @Test func tokensNarrowWhatASessionMayDo() {
        var configuration = BrokerConfiguration()
        configuration.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"{"/members/**": {"publish": "authenticated"}}"#).objectValue!)
        let open = Broker(configuration: configuration)
        var anonymous = CoreClient(open)
        _ = anonymous.connected()
        #expect(anonymous.publish("/members/x", "1")["error"] == .string("403:/members/x:Publish not allowed"))
        #expect(anonymous.publish("/public", "1")["successful"] == .bool(true))

        configuration.requiresAuthentication = true
        let broker = Broker(configuration: configuration)
        let claim = ClientIdentity(subject: "alice", channels: ["/stocks/AAPL", "/news/**", "/members/*"].map { ChannelPattern($0)! })
        var alice = CoreClient(broker)
        _ = alice.connected(credential: .valid(claim))
        #expect(alice.publish("/members/x", "1")["successful"] == .bool(true))
        #expect(alice.publish("/news/a/b", "1")["successful"] == .bool(true))
        #expect(alice.publish("/stocks/MSFT", "1")["error"] == .string("403:/stocks/MSFT:Publish not allowed"))
        #expect(alice.subscribe("/stocks/AAPL")["successful"] == .bool(true))
        #expect(alice.subscribe("/news/*")["successful"] == .bool(true))
        #expect(alice.subscribe("/news/**")["successful"] == .bool(true))
        for wider in ["/stocks/*", "/stocks/**", "/**", "/members/**", "/news"] {
            #expect(alice.subscribe(wider)["error"] == .string("403:\(wider):Subscription not allowed"), "\(wider)")
        }
        #expect(alice.unsubscribe("/news/*")["successful"] == .bool(true))
        var bob = CoreClient(broker)
        _ = bob.connected(credential: .valid(ClientIdentity(subject: "bob")))
        #expect(bob.subscribe("/**")["successful"] == .bool(true), "no claim: the channel options alone decide")
        #expect(broker.limits.count(.channelPermission) == 6)
    }

    /// A session ends when its token expires, unless a connect brings a fresh token for the
    /// same subject; a fresh token for another subject does not extend it.
    @Test func sessionsEndWithTheirTokenUnlessRefreshed() {
        let clock = ManualClock()
        var configuration = BrokerConfiguration()
        configuration.requiresAuthentication = true
        let broker = Broker(configuration: configuration, clock: clock)
        let now = clock.nowMillisecondsSince1970()
        var refreshed = CoreClient(broker)
        _ = refreshed.connected(credential: .valid(ClientIdentity(subject: "alice", expiresAtMilliseconds: now + 1_000)))
        var lapsing = CoreClient(broker)
        _ = lapsing.connected(credential: .valid(ClientIdentity(subject: "bob", expiresAtMilliseconds: now + 1_000)))
        _ = refreshed.send(#"[{"channel":"/meta/connect","clientId":"\#(refreshed.clientId)","connectionType":"websocket","advice":{"timeout":0}}]"#,
                           credential: .valid(ClientIdentity(subject: "alice", expiresAtMilliseconds: now + 60_000)))
        _ = lapsing.send(#"[{"channel":"/meta/connect","clientId":"\#(lapsing.clientId)","connectionType":"websocket","advice":{"timeout":0}}]"#,
                         credential: .valid(ClientIdentity(subject: "mallory", expiresAtMilliseconds: now + 60_000)))
        clock.advance(milliseconds: 2_000)
        broker.expireSessions()
        #expect(broker.session(id: refreshed.clientId) != nil)
        #expect(broker.session(id: lapsing.clientId) == nil)
        #expect(lapsing.connection.state.withLock { $0.closedReason } == .tokenExpired)
    }

    /// `maxPublishesPerSecondPerSession`: a burst of twice the rate, then the rate, per
    /// session; others are unaffected.
    @Test func publishesAreRateLimitedPerSession() {
        let clock = ManualClock()
        var configuration = BrokerConfiguration()
        configuration.maxPublishesPerSecondPerSession = 5
        let broker = Broker(configuration: configuration, clock: clock)
        var flood = CoreClient(broker)
        _ = flood.connected()
        var other = CoreClient(broker)
        _ = other.connected()
        let replies = (0..<15).map { flood.publish("/a", String($0))["successful"] == .bool(true) }
        #expect(replies.filter { $0 }.count == 10)
        #expect(flood.publish("/a", "99")["error"] == .string("429:publish_rate:Too many publishes"))
        #expect(other.publish("/a", "1")["successful"] == .bool(true), "another session has its own tokens")
        clock.advance(milliseconds: 1000)
        #expect((0..<6).map { flood.publish("/a", String($0))["successful"] == .bool(true) } == [true, true, true, true, true, false])
        #expect(broker.limits.count(.publishRate) == 7)
    }

    /// Channel option `subscribe`, anonymous sessions and `claim:` permissions (issue 12):
    /// a wildcard subscription needs the permission of every rule that decides for a channel
    /// it could match, so `/**` cannot reach what `/vip/*` or `/desk/**` closes.
    @Test func subscribePermissionsAnonymousSessionsAndClaims() {
        var configuration = BrokerConfiguration()
        configuration.requiresAuthentication = true
        configuration.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"""
            {"/**": {"subscribe": "authenticated"},
             "/public/**": {"subscribe": "anyone", "publish": "server"},
             "/desk/**": {"subscribe": "claim:role=trader", "publish": "claim:role=trader"},
             "/vip/*": {"subscribe": "claim:vip"}}
            """#).objectValue!)
        let broker = Broker(configuration: configuration)
        var anonymous = CoreClient(broker)
        #expect(anonymous.handshake()["successful"] == .bool(true), "a pattern is open to anyone: no token needed")
        #expect(broker.session(id: anonymous.clientId)?.identity == nil)
        #expect(anonymous.subscribe("/public/*")["successful"] == .bool(true))
        #expect(anonymous.subscribe("/public/a/**")["successful"] == .bool(true))
        for closed in ["/**", "/news", "/desk/x", "/*", "/public"] {
            #expect(anonymous.subscribe(closed)["error"] == .string("403:\(closed):Subscription not allowed"), "\(closed)")
        }
        #expect(anonymous.publish("/public/x", "1")["error"] == .string("403:/public/x:Publish not allowed"))
        #expect(anonymous.publish("/news", "1")["error"] == .string("403:/news:Publish not allowed"), "unset: authenticated only")

        let trader = ClientIdentity(subject: "alice", claims: JSONObject([("role", .array([.string("analyst"), .string("trader")]))]))
        var alice = CoreClient(broker)
        _ = alice.connected(credential: .valid(trader))
        #expect(alice.subscribe("/desk/**")["successful"] == .bool(true))
        #expect(alice.subscribe("/news")["successful"] == .bool(true))
        #expect(alice.publish("/desk/fx", "1")["successful"] == .bool(true))
        #expect(alice.publish("/news", "1")["successful"] == .bool(true))
        #expect(alice.subscribe("/**")["error"] == .string("403:/**:Subscription not allowed"), "/vip/* needs the vip claim")
        #expect(alice.subscribe("/vip/*")["error"] == .string("403:/vip/*:Subscription not allowed"))

        var bob = CoreClient(broker)
        _ = bob.connected(credential: .valid(ClientIdentity(subject: "bob", claims: JSONObject([("vip", .bool(true)), ("role", .string("sales"))]))))
        #expect(bob.subscribe("/vip/*")["successful"] == .bool(true))
        #expect(bob.subscribe("/desk/*")["error"] == .string("403:/desk/*:Subscription not allowed"))
        #expect(bob.publish("/desk/fx", "1")["error"] == .string("403:/desk/fx:Publish not allowed"))
        #expect(bob.subscribe("/**")["error"] == .string("403:/**:Subscription not allowed"), "/desk/** needs the trader role")
        #expect(broker.limits.count(.channelPermission) == 12)

        // Without a pattern open to anyone, a handshake without a token is refused.
        configuration.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"{"/**": {"subscribe": "authenticated"}}"#).objectValue!)
        var refused = CoreClient(Broker(configuration: configuration))
        #expect(refused.handshake()["error"] == .string("401::Authentication required"))
    }

    @Test func permissionsAreParsed() throws {
        for bad in [#"{"/a": {"subscribe": "server"}}"#, #"{"/a": {"publish": "claim:"}}"#, #"{"/a": {"subscribe": "claim:role="}}"#, #"{"/a": {"subscribe": 1}}"#] {
            #expect(throws: ChannelPolicyTable.ParseError.self, "\(bad)") { try ChannelPolicyTable.parse(JSONParser.parse(bad).objectValue!) }
        }
        let table = try ChannelPolicyTable.parse(JSONParser.parse(#"{"/a/**": {"subscribe": "claim:role=x=y", "publish": "claim:ok"}}"#).objectValue!)
        #expect(table.options(for: ChannelName("/a/b")!)?.subscribe == .claim(name: "role", value: "x=y"))
        #expect(table.options(for: ChannelName("/a/b")!)?.publish == .claim(name: "ok", value: nil))
        #expect(table.admitsAnonymous == false)
    }

    @Test func patternsOverlapWhenSomeChannelMatchesBoth() {
        let cases: [(String, String, Bool)] = [
            ("/a/**", "/a/b/*", true), ("/a/*", "/a/b/c", false), ("/a/*", "/a/b", true),
            ("/a", "/a/**", false), ("/a/**", "/b/**", false), ("/**", "/x", true),
            ("/a/b/**", "/a/*", false), ("/a/*/", "/a/*", false), ("/a/*", "/*", false), ("/a/**", "/*/b", false),
        ]
        for (a, b, expected) in cases {
            guard let p = ChannelPattern(a), let q = ChannelPattern(b) else { continue }
            #expect(p.overlaps(q) == expected, "\(a) \(b)")
            #expect(q.overlaps(p) == expected, "\(b) \(a)")
        }
    }
}
