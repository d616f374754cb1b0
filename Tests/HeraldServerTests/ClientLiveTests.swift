import Foundation
import HeraldClient
import HeraldCore
import HeraldProtocol
import HeraldServer
import Logging
import NIOCore
import Synchronization
import Testing

/// HeraldClient (the Swift SDK) against a live Herald on a port of its own.
@Suite struct ClientLiveTests {
    struct Quote: Codable, Equatable, Sendable {
        var symbol: String
        var px: Double
    }

    static let logger: Logger = {
        var logger = Logger(label: "herald.client.test")
        logger.logLevel = .critical
        return logger
    }()

    /// Fast reconnects, short timeouts: the tests restart servers on purpose.
    static func configuration(_ transports: [HeraldClientConfiguration.Transport] = [.websocket, .longPolling]) -> HeraldClientConfiguration {
        var configuration = HeraldClientConfiguration()
        configuration.transports = transports
        configuration.reconnect = .init(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(500))
        configuration.connectTimeout = .seconds(5)
        configuration.requestTimeout = .seconds(10)
        return configuration
    }

    static func url(_ port: Int, _ scheme: String = "ws") -> String { "\(scheme)://127.0.0.1:\(port)/bayeux" }

    /// History on `/feed/**`, `size` messages deep.
    static func feed(size: Int = 1000) -> (inout BrokerConfiguration) -> Void {
        { c in c.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"{"/feed/**": {"retain": true, "historySize": \#(size)}}"#).objectValue!) }
    }

    /// The next `count` events, or those that came if `seconds` pass first.
    static func collect<P: Sendable>(_ subscription: HeraldSubscription<P>, count: Int, seconds: Double = 10) async throws -> [HeraldEvent<P>] {
        let collected = Collected<HeraldEvent<P>>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await event in subscription {
                    let done = collected.events.withLock { events in
                        events.append(event)
                        return events.count == count
                    }
                    if done { break }
                }
            }
            group.addTask { try await Task.sleep(for: .seconds(seconds)) }
            try await group.next()
            group.cancelAll()
        }
        return collected.events.withLock { $0 }
    }

    @Test(arguments: [HeraldClientConfiguration.Transport.websocket, .longPolling])
    func publishAndReceiveDecodedAndRaw(transport: HeraldClientConfiguration.Transport) async throws {
        try await withLiveServer { live in
            try await HeraldClient.withConnection(to: Self.url(live.port), configuration: Self.configuration([transport]), logger: Self.logger) { client in
                let quotes = try await client.subscribe("/stocks/*", as: Quote.self)
                let raw = try await client.subscribe("/stocks/AAPL")
                try await client.publish(json: #"{"symbol":"AAPL","px":189.25}"#, to: "/stocks/AAPL")
                try await client.publish(json: #"{"symbol":"MSFT","px":411.5}"#, to: "/stocks/MSFT")

                let decoded = try await Self.collect(quotes, count: 2)
                #expect(decoded.compactMap(\.message?.data) == [Quote(symbol: "AAPL", px: 189.25), Quote(symbol: "MSFT", px: 411.5)])
                #expect(decoded.compactMap(\.message?.channel) == ["/stocks/AAPL", "/stocks/MSFT"])
                let bytes = try await Self.collect(raw, count: 1)
                let message = try #require(bytes.first?.message)
                #expect(message.channel == "/stocks/AAPL")
                #expect(String(buffer: message.data) == #"{"symbol":"AAPL","px":189.25}"#)
            }
        }
    }

    @Test func refusalsAreTypedAndCarryTheServersError() async throws {
        try await withLiveServer { live in
            try await HeraldClient.withConnection(to: Self.url(live.port), configuration: Self.configuration(), logger: Self.logger) { client in
                let publish = await #expect(throws: HeraldClientError.self) {
                    try await client.publish(json: "1", to: "/meta/nope")
                }
                #expect(publish?.code == .publishRefused)
                #expect(publish?.bayeuxError == "403:/meta/nope:Forbidden channel")
                let invalid = await #expect(throws: HeraldClientError.self) {
                    try await client.publish(json: "{oops", to: "/a")
                }
                #expect(invalid?.code == .publishRefused)

                let subscribe = await #expect(throws: HeraldClientError.self) {
                    _ = try await client.subscribe("/meta/nope")
                }
                #expect(subscribe?.code == .subscriptionDenied)
                #expect(subscribe?.bayeuxCode == 403)

                // An explicit replay on a channel without history is the caller's error.
                let replay = await #expect(throws: HeraldClientError.self) {
                    _ = try await client.subscribe("/plain", replay: .after(offset: 3))
                }
                #expect(replay?.code == .subscriptionDenied)
                #expect(replay?.bayeuxError?.hasSuffix("Channel keeps no history") == true)
            }
        }
    }

    @Test func unreachableServerFailsTheFirstConnectionInOneError() async throws {
        // A port nothing listens on: bind one, note it, close it.
        let live = try await LiveServer.start()
        let port = live.port
        await live.stop()
        let error = await #expect(throws: HeraldClientError.self) {
            try await HeraldClient.withConnection(to: Self.url(port), configuration: Self.configuration(), logger: Self.logger) { _ in }
        }
        #expect(error?.code == .unreachable)
        let url = #expect(throws: HeraldClientError.self) {
            _ = try HeraldClient(url: "ftp://127.0.0.1/bayeux", logger: Self.logger)
        }
        #expect(url?.code == .invalidURL)
    }

    /// A proxy that answers the WebSocket upgrade with 403: the client uses long-polling through
    /// it and works; allowed WebSocket only, it says the upgrade was refused.
    @Test(.timeLimit(.minutes(1))) func aRefusedUpgradeFallsBackToLongPolling() async throws {
        try await withLiveServer { live in
            let proxy = try await LoopbackProxy.start(upstreams: [live.port], refuseUpgrades: true, on: LiveServer.group)
            let client = try HeraldClient(url: Self.url(proxy.port), configuration: Self.configuration(), logger: Self.logger)
            let states = client.connectionStates
            let running = Task { try await client.run() }
            var iterator = states.makeAsyncIterator()
            var seen: [HeraldConnectionState] = []
            while let state = await iterator.next() {
                seen.append(state)
                if case .connected = state { break }
            }
            #expect(seen.last == .connected(transport: .longPolling))
            #expect(proxy.refusedUpgrades == 1, "one upgrade tried, then long-polling only")

            let subscription = try await client.subscribe("/fallback", as: Int.self)
            for n in 1...3 { try await client.publish(n, to: "/fallback") }
            #expect(try await Self.collect(subscription, count: 3).compactMap(\.message?.data) == [1, 2, 3])
            #expect(live.broker.sessions(after: nil, limit: 10, receiving: nil).count == 1)
            await client.close()
            _ = try await running.value

            let refused = await #expect(throws: HeraldClientError.self) {
                try await HeraldClient.withConnection(to: Self.url(proxy.port), configuration: Self.configuration([.websocket]), logger: Self.logger) { _ in }
            }
            #expect(refused?.code == .unreachable)
            #expect(refused?.detail?.contains("refused the WebSocket upgrade") == true)
            #expect(proxy.refusedUpgrades == 2)
            #expect(proxy.passedConnections >= 2, "long-polling went through the proxy")
            await proxy.stop()
        }
    }

    @Test func cancellingTheConsumerUnsubscribes() async throws {
        try await withLiveServer { live in
            try await HeraldClient.withConnection(to: Self.url(live.port), configuration: Self.configuration(), logger: Self.logger) { client in
                let subscription = try await client.subscribe("/news")
                #expect(live.broker.subscriberCount(of: "/news") == 1)
                let consumer = Task { for try await _ in subscription {} }
                try await Task.sleep(for: .milliseconds(50))
                consumer.cancel()
                _ = await consumer.result
                try await waitFor { live.broker.subscriberCount(of: "/news") == 0 }

                let other = try await client.subscribe("/other")
                #expect(live.broker.subscriberCount(of: "/other") == 1)
                await other.unsubscribe()
                try await waitFor { live.broker.subscriberCount(of: "/other") == 0 }
                var iterator = other.makeAsyncIterator()
                #expect(try await iterator.next() == nil)
            }
        }
    }

    @Test func stateStreamFollowsTheConnectionThroughARestart() async throws {
        let live = try await LiveServer.start()
        let client = try HeraldClient(url: Self.url(live.port), configuration: Self.configuration(), logger: Self.logger)
        let states = client.connectionStates
        let running = Task { try await client.run() }
        var seen: [HeraldConnectionState] = []
        var iterator = states.makeAsyncIterator()
        while let state = await iterator.next() {
            seen.append(state)
            if state == .connected(transport: .websocket) { break }
        }
        await live.server.shutdown()
        let second = HeraldServer(broker: live.broker, configuration: Self.serverConfiguration(port: live.port), eventLoopGroup: LiveServer.group, logger: Self.logger)
        while let state = await iterator.next() {
            seen.append(state)
            if case .reconnecting = state { break }
        }
        _ = try await second.start()
        while let state = await iterator.next() {
            seen.append(state)
            if state == .connected(transport: .websocket) { break }
        }
        await client.close()
        while let state = await iterator.next() { seen.append(state) }
        _ = try await running.value
        #expect(seen.first == .connecting)
        #expect(seen.filter { $0 == .connected(transport: .websocket) }.count == 2)
        #expect(seen.contains(.reconnecting(attempt: 1)))
        #expect(seen.last == .closed(reason: nil))
        await second.shutdown()
        await live.stop()
    }

    static func serverConfiguration(port: Int) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = port
        return configuration
    }

    /// The server drops every connection twice while a feed runs: the consumer still sees each
    /// message once, in order (the client resumes from its last offset).
    @Test func droppedConnectionsLoseNothingAndDuplicateNothing() async throws {
        try await droppedConnections(transport: .websocket)
    }

    @Test func droppedLongPollingConnectionsLoseNothing() async throws {
        try await droppedConnections(transport: .longPolling)
    }

    func droppedConnections(transport: HeraldClientConfiguration.Transport) async throws {
        let live = try await LiveServer.start(broker: Self.feed())
        let client = try HeraldClient(url: Self.url(live.port), configuration: Self.configuration([transport]), logger: Self.logger)
        let running = Task { try await client.run() }
        // The channel exists before the subscribe (its retained 0 comes first): a channel that
        // appears under a wildcard after the subscribe, and loses its connection before its
        // first message reaches the client, is not resumed (docs/clients.md says so).
        try live.broker.publish(ChannelName("/feed/a")!, json: "0")
        let subscription = try await client.subscribe("/feed/*", as: Int.self)
        let total = 600
        let publisher = Task {
            for n in 1...total {
                try live.broker.publish(ChannelName("/feed/a")!, json: String(n))
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        var servers: [HeraldServer] = []
        let dropper = Task {
            var port = live.port
            var current = live.server
            for _ in 0..<2 {
                try await Task.sleep(for: .milliseconds(350))
                await current.shutdown()
                try await Task.sleep(for: .milliseconds(100))
                current = HeraldServer(broker: live.broker, configuration: Self.serverConfiguration(port: port), eventLoopGroup: LiveServer.group, logger: Self.logger)
                port = try await current.start().port!
                servers.append(current)
            }
            return servers
        }
        let events = try await Self.collect(subscription, count: total + 1, seconds: 30)
        try await publisher.value
        let restarted = try await dropper.value
        #expect(events.allSatisfy { $0.message != nil }, "no gap expected")
        let values = events.compactMap(\.message?.data)
        #expect(values.count == total + 1)
        #expect(values == Array(0..<values.count), "first wrong: \(values.enumerated().first { $0.offset != $0.element }.map { "\($0)" } ?? "none")")
        await client.close()
        _ = try await running.value
        for server in restarted { await server.shutdown() }
        await live.stop()
    }

    /// The connection goes before the subscriptions have received anything: messages published
    /// meanwhile still arrive, from where each subscription started (the subscribe reply's
    /// `ext.herald.positions`), on a channel name with no message yet and under a wildcard.
    @Test(arguments: [HeraldClientConfiguration.Transport.websocket, .longPolling])
    func aConnectionLostBeforeTheFirstMessageLosesNothing(transport: HeraldClientConfiguration.Transport) async throws {
        let live = try await LiveServer.start(broker: { c in
            c.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"{"/quiet/**": {"historySize": 100}}"#).objectValue!)
        })
        try live.broker.publish(ChannelName("/quiet/a")!, json: "0")
        let client = try HeraldClient(url: Self.url(live.port), configuration: Self.configuration([transport]), logger: Self.logger)
        let running = Task { try await client.run() }
        let exact = try await client.subscribe("/quiet/b", as: Int.self)
        let wildcard = try await client.subscribe("/quiet/*", as: Int.self)

        await live.server.shutdown()
        for n in 1...5 {
            try live.broker.publish(ChannelName("/quiet/a")!, json: String(n))
            try live.broker.publish(ChannelName("/quiet/b")!, json: String(10 + n))
        }
        let second = HeraldServer(broker: live.broker, configuration: Self.serverConfiguration(port: live.port), eventLoopGroup: LiveServer.group, logger: Self.logger)
        _ = try await second.start()

        let exactEvents = try await Self.collect(exact, count: 5)
        #expect(exactEvents.compactMap(\.message?.data) == [11, 12, 13, 14, 15])
        #expect(exactEvents.compactMap(\.message?.position?.offset) == [1, 2, 3, 4, 5])
        let wildcardEvents = try await Self.collect(wildcard, count: 10)
        #expect(wildcardEvents.allSatisfy { $0.message != nil }, "no gap expected")
        #expect(wildcardEvents.filter { $0.message?.channel == "/quiet/a" }.compactMap(\.message?.data) == [1, 2, 3, 4, 5])
        #expect(wildcardEvents.filter { $0.message?.channel == "/quiet/b" }.compactMap(\.message?.data) == [11, 12, 13, 14, 15])
        await client.close()
        _ = try await running.value
        await second.shutdown()
        await live.stop()
    }

    /// History too short to cover the outage: the subscription says so, then continues live.
    @Test func aLostPositionIsAGapEventAndTheFeedContinues() async throws {
        let live = try await LiveServer.start(broker: Self.feed(size: 5))
        let client = try HeraldClient(url: Self.url(live.port), configuration: Self.configuration(), logger: Self.logger)
        let running = Task { try await client.run() }
        let subscription = try await client.subscribe("/feed/x", as: Int.self)
        try live.broker.publish(ChannelName("/feed/x")!, json: "1")
        var iterator = subscription.makeAsyncIterator()
        #expect(try await iterator.next()?.message?.data == 1)

        await live.server.shutdown()
        for n in 2...20 { try live.broker.publish(ChannelName("/feed/x")!, json: String(n)) }
        let second = HeraldServer(broker: live.broker, configuration: Self.serverConfiguration(port: live.port), eventLoopGroup: LiveServer.group, logger: Self.logger)
        _ = try await second.start()

        guard case .gap(let gap)? = try await iterator.next() else {
            Issue.record("expected a gap")
            return
        }
        #expect(gap.channel == "/feed/x")
        #expect(gap.lastDelivered?.offset == 1)
        #expect(gap.bayeuxError.hasPrefix("410:/feed/x,1:"))
        #expect(gap.oldestOffset == 16 && gap.latestOffset == 20)
        // Then the retained value (20), and live messages.
        #expect(try await iterator.next()?.message?.data == 20)
        // (The session from before the restart is still subscribed until it expires.)
        try live.broker.publish(ChannelName("/feed/x")!, json: "21")
        #expect(try await iterator.next()?.message?.data == 21)
        await client.close()
        _ = try await running.value
        await second.shutdown()
        await live.stop()
    }

    /// A consumer that falls behind: at `maximumBufferedMessages` its subscription drops
    /// newer messages (its memory stays bounded; the client's other subscriptions go on) until
    /// the consumer has taken half of what it held; then it is told, once per channel, how many
    /// were dropped and after which position, before the next message.
    @Test func aConsumerThatFallsBehindGetsAGapInsteadOfUnboundedMemory() async throws {
        try await withLiveServer(broker: Self.feed(size: 1000)) { live in
            var configuration = Self.configuration([.websocket])
            configuration.maximumBufferedMessages = 10
            try await HeraldClient.withConnection(to: Self.url(live.port), configuration: configuration, logger: Self.logger) { client in
                let slow = try await client.subscribe("/feed/*", as: Int.self)
                var marker = try await client.subscribe("/done", as: Int.self).makeAsyncIterator()
                // The server queues a session's messages in order: once the marker is back,
                // everything published before it reached the slow subscription.
                func settled() async throws {
                    try await client.publish(0, to: "/done")
                    #expect(try await marker.next()?.message?.data == 0)
                }
                for n in 1...50 { try await client.publish(n, to: n.isMultiple(of: 2) ? "/feed/y" : "/feed/x") }
                try await settled()   // 1...10 kept, 11...50 dropped
                var events = slow.makeAsyncIterator()
                for n in 1...4 { #expect(try await events.next()?.message?.data == n) }
                try await client.publish(51, to: "/feed/x")
                try await settled()   // 6 held, more than half of 10: still dropping
                #expect(try await events.next()?.message?.data == 5)
                try await client.publish(52, to: "/feed/y")
                try await settled()   // 5 held: the gaps, then 52
                for n in 6...10 { #expect(try await events.next()?.message?.data == n) }
                var gaps: [HeraldGap] = []
                for _ in 0..<2 {
                    guard case .gap(let gap)? = try await events.next() else {
                        Issue.record("expected a gap")
                        return
                    }
                    gaps.append(gap)
                }
                #expect(gaps.map(\.channel) == ["/feed/x", "/feed/y"])
                #expect(gaps.map(\.droppedMessages) == [21, 20], "11...49 odd and 51 on x, 12...50 even on y")
                #expect(gaps.map { $0.lastDelivered?.offset } == [5, 5], "9 was x's 5th message, 10 y's")
                #expect(gaps.allSatisfy { $0.bayeuxError.isEmpty })
                #expect(try await events.next()?.message?.data == 52)
            }
        }
    }

    /// An explicit start position the server no longer has is the caller's to handle.
    @Test func anExpiredExplicitReplayIsReplayPositionLost() async throws {
        try await withLiveServer(broker: Self.feed(size: 3)) { live in
            for n in 1...10 { try live.broker.publish(ChannelName("/feed/y")!, json: String(n)) }
            try await HeraldClient.withConnection(to: Self.url(live.port), configuration: Self.configuration(), logger: Self.logger) { client in
                let error = await #expect(throws: HeraldClientError.self) {
                    _ = try await client.subscribe("/feed/y", replay: .after(offset: 2))
                }
                #expect(error?.code == .replayPositionLost)
                #expect(error?.channel == "/feed/y")
                let all = try await client.subscribe("/feed/y", as: Int.self, replay: .all)
                let events = try await Self.collect(all, count: 3)
                #expect(events.compactMap(\.message?.data) == [8, 9, 10])
                #expect(events.compactMap(\.message?.position?.offset) == [8, 9, 10])
            }
        }
    }
}

/// Polls `condition` every 10 ms for up to 5 s.
func waitFor(_ condition: () -> Bool) async throws {
    for _ in 0..<500 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met in 5 s")
}

extension Broker {
    /// Sessions that receive messages published to `channel`.
    func subscriberCount(of channel: String) -> Int {
        sessions(after: nil, limit: 10_000, receiving: ChannelName(channel)!).count
    }
}

/// Events gathered by one task and read by another.
final class Collected<Element: Sendable>: Sendable {
    let events = Mutex<[Element]>([])
}

/// The same client API over `InProcessTransport`: no socket, the broker's own sessions.
@Suite struct InProcessClientTests {
    @Test func anEmbeddedServicePublishesAndSubscribesInProcess() async throws {
        let broker = Broker(configuration: {
            var c = BrokerConfiguration()
            ClientLiveTests.feed()(&c)
            return c
        }(), logger: ClientLiveTests.logger)
        let client = HeraldClient(transport: InProcessTransport(broker: broker), configuration: ClientLiveTests.configuration(), logger: ClientLiveTests.logger)
        try await client.withConnection { client in
            let feed = try await client.subscribe("/feed/*", as: Int.self)
            for n in 1...100 { try await client.publish(n, to: "/feed/p") }
            let events = try await ClientLiveTests.collect(feed, count: 100)
            #expect(events.compactMap(\.message?.data) == Array(1...100))
            #expect(events.last?.message?.position?.offset == 100)
            #expect(broker.subscriberCount(of: "/feed/p") == 1)

            // A server-side publish reaches the in-process subscriber too.
            try broker.publish(ChannelName("/feed/q")!, json: "101")
            let more = try await ClientLiveTests.collect(feed, count: 1)
            #expect(more.first?.message?.channel == "/feed/q")

            let refused = await #expect(throws: HeraldClientError.self) {
                try await client.publish(json: "1", to: "/meta/x")
            }
            #expect(refused?.bayeuxCode == 403)
        }
        #expect(broker.subscriberCount(of: "/feed/p") == 0)
    }

    /// A `/service/**` handler registered in Swift answers an in-process client privately, as
    /// it answers a remote one: the reply comes on the service channel to the requester only.
    @Test func serviceHandlersAnswerInProcessClients() async throws {
        let broker = Broker(configuration: BrokerConfiguration(), logger: ClientLiveTests.logger)
        broker.registerService(ChannelPattern("/service/echo")!) { request in
            .object(JSONObject([("echo", (try? JSONParser.parse(String(buffer: request.data))) ?? .null), ("local", .bool(request.session != nil))]))
        }
        let client = HeraldClient(transport: InProcessTransport(broker: broker), configuration: ClientLiveTests.configuration(), logger: ClientLiveTests.logger)
        let other = HeraldClient(transport: InProcessTransport(broker: broker), configuration: ClientLiveTests.configuration(), logger: ClientLiveTests.logger)
        try await other.withConnection { other in
            let overheard = try await other.subscribe("/service/echo")
            try await client.withConnection { client in
                let replies = try await client.subscribe("/service/echo")
                try await client.publish(json: #"{"n":7}"#, to: "/service/echo")
                let reply = try #require(try await ClientLiveTests.collect(replies, count: 1).first?.message)
                #expect(reply.channel == "/service/echo")
                #expect(try JSONParser.parse(String(buffer: reply.data)) == JSONParser.parse(#"{"echo":{"n":7},"local":true}"#))
            }
            #expect(try await ClientLiveTests.collect(overheard, count: 1, seconds: 0.3).isEmpty, "a service reply goes to the requester only")
        }
    }
}

/// `herald serve` restarts on its SQLite data: the client resumes from its offset, and the
/// messages published while it was away arrive once, in order, with no gap.
@Suite struct ClientRestartTests {
    @Test func theClientResumesAcrossAHeraldServeRestart() async throws {
        let directory = NSTemporaryDirectory() + "herald-client-restart-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/herald.json"
        try #"{"channels": {"/feed/**": {"retain": true, "historySize": 1000, "persist": true}}}"#.write(toFile: config, atomically: true, encoding: .utf8)

        let first = try await CrashTests.ServerProcess.start(dataDirectory: directory, config: config)
        let url = ClientLiveTests.url(first.port)
        let subscriber = try HeraldClient(url: url, configuration: ClientLiveTests.configuration(), logger: ClientLiveTests.logger)
        let running = Task { try await subscriber.run() }
        let feed = try await subscriber.subscribe("/feed/a", as: Int.self)
        try await HeraldClient.withConnection(to: url, configuration: ClientLiveTests.configuration(), logger: ClientLiveTests.logger) { publisher in
            for n in 1...100 { try await publisher.publish(n, to: "/feed/a") }
        }
        let before = try await ClientLiveTests.collect(feed, count: 100)
        #expect(before.compactMap(\.message?.data) == Array(1...100))

        // A graceful restart on the same port and data directory; publish at once, before the
        // subscriber is back.
        first.process.terminate()
        first.process.waitUntilExit()
        let second = try await CrashTests.ServerProcess.start(dataDirectory: directory, config: config, port: first.port)
        defer {
            second.process.terminate()
            second.process.waitUntilExit()
        }
        try await HeraldClient.withConnection(to: url, configuration: ClientLiveTests.configuration(), logger: ClientLiveTests.logger) { publisher in
            for n in 101...200 { try await publisher.publish(n, to: "/feed/a") }
        }
        let after = try await ClientLiveTests.collect(feed, count: 100)
        #expect(after.allSatisfy { $0.message != nil }, "no gap expected")
        #expect(after.compactMap(\.message?.data) == Array(101...200))
        #expect(after.compactMap(\.message?.position?.offset) == Array(101...200))
        await subscriber.close()
        _ = try await running.value
    }
}
