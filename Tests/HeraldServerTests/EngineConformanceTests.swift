import Foundation
import HeraldClient
import HeraldCore
import HeraldPostgres
import HeraldProtocol
import HeraldServer
import HeraldSQLite
import Logging
import NIOCore
import Testing

/// Where a broker keeps its logs: the single-node SQLite store, or PostgreSQL shared by nodes.
enum EngineKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// Whether the PostgreSQL cases run: they need Debian's `postgresql` (its server binaries),
    /// which `.ci/run` installs before setting `HERALD_POSTGRES=1`.
    static let postgresEnabled = ProcessInfo.processInfo.environment["HERALD_POSTGRES"] == "1"

    /// SQLite always; PostgreSQL when enabled.
    static let available: [EngineKind] = postgresEnabled ? allCases : [.sqlite]
}

/// One backing store (an SQLite file, or a PostgreSQL server) and the brokers started on it.
final class EngineFixture: Sendable {
    let kind: EngineKind
    let directory: String
    let postgres: PostgresServer?
    let channels: ChannelPolicyTable

    static let logger: Logger = {
        var logger = Logger(label: "herald.engine.test")
        logger.logLevel = .critical
        return logger
    }()

    private init(kind: EngineKind, directory: String, postgres: PostgresServer?, channels: ChannelPolicyTable) {
        self.kind = kind
        self.directory = directory
        self.postgres = postgres
        self.channels = channels
    }

    static func make(_ kind: EngineKind, channels json: String) async throws -> EngineFixture {
        let directory = NSTemporaryDirectory() + "herald-engine-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let table = try ChannelPolicyTable.parse(JSONParser.parse(json).objectValue!)
        return EngineFixture(kind: kind, directory: directory, postgres: kind == .postgres ? try await PostgresServer.start() : nil, channels: table)
    }

    /// A broker running on this store, as `herald serve` runs it (restored, with its loops).
    final class Node: Sendable {
        let broker: Broker
        let running: [Task<Void, any Error>]

        init(broker: Broker, running: [Task<Void, any Error>]) {
            self.broker = broker
            self.running = running
        }

        func client() -> HeraldClient {
            var configuration = HeraldClientConfiguration()
            configuration.requestTimeout = .seconds(10)
            return HeraldClient(transport: InProcessTransport(broker: broker), configuration: configuration, logger: EngineFixture.logger)
        }

        func stop() async {
            for task in running.reversed() {
                task.cancel()
                _ = await task.result
            }
        }
    }

    func start(node: String = "a") async throws -> Node {
        var configuration = BrokerConfiguration()
        configuration.channels = channels
        switch kind {
        case .sqlite:
            let store = SQLiteMessageStore(path: directory + "/herald.sqlite", synchronousFull: true)
            let broker = Broker(configuration: configuration, store: store, logger: Self.logger)
            try await broker.restore()
            return Node(broker: broker, running: [Task { try await BrokerService(broker: broker).run() }])
        case .postgres:
            let engine = try PostgresEngine(url: postgres!.url, node: node, logger: Self.logger)
            let broker = Broker(configuration: configuration, cluster: engine, logger: Self.logger)
            try await broker.restore()
            return Node(broker: broker, running: [Task { try await engine.run() }, Task { try await BrokerService(broker: broker).run() }])
        }
    }

    func destroy() async {
        await postgres?.destroy()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The behaviour every engine owes the broker, on SQLite and on PostgreSQL alike: offsets
/// from 1 in publish order, one epoch, history bounded by its size, the retained value,
/// replay after an offset and its refusals, and all of it kept across a restart.
@Suite(.serialized) struct EngineConformanceTests {
    static let channels = #"{"/c/**": {"retain": true, "historySize": 5, "persist": true}, "/plain/**": {}}"#

    func values(_ events: [HeraldEvent<Int>]) -> [Int] { events.compactMap(\.message?.data) }
    func offsets(_ events: [HeraldEvent<Int>]) -> [Int] { events.compactMap(\.message?.position?.offset) }

    @Test(arguments: EngineKind.available)
    func offsetsRetainedValueAndHistory(engine: EngineKind) async throws {
        let fixture = try await EngineFixture.make(engine, channels: Self.channels)
        let node = try await fixture.start()
        try await node.client().withConnection { client in
            for n in 1...8 { try await client.publish(n, to: "/c/a") }
            let all = try await ClientLiveTests.collect(try await client.subscribe("/c/a", as: Int.self, replay: .all), count: 5)
            #expect(values(all) == [4, 5, 6, 7, 8], "history keeps the last 5")
            #expect(offsets(all) == [4, 5, 6, 7, 8])
            #expect(Set(all.compactMap(\.message?.position?.epoch)).count == 1)

            let latest = try await ClientLiveTests.collect(try await client.subscribe("/c/a", as: Int.self), count: 1)
            #expect(latest.first?.message?.isRetained == true)
            #expect(latest.first?.message?.data == 8)

            // The server side's publish is told its offset.
            let published = await node.broker.publishFromServer(ChannelName("/c/a")!, data: ByteBuffer(string: "9"))
            #expect(published == .published(offset: 9, epoch: all.first?.message?.position?.epoch))
            // A channel without options has no offsets.
            let plain = try await client.subscribe("/plain/x", as: Int.self)
            try await client.publish(1, to: "/plain/x")
            let live = try await ClientLiveTests.collect(plain, count: 1)
            #expect(values(live) == [1])
            #expect(live.first?.message?.position == nil)
        }
        await node.stop()
        await fixture.destroy()
    }

    @Test(arguments: EngineKind.available)
    func replayAfterAnOffsetAndItsRefusals(engine: EngineKind) async throws {
        let fixture = try await EngineFixture.make(engine, channels: Self.channels)
        let node = try await fixture.start()
        try await node.client().withConnection { client in
            for n in 1...8 { try await client.publish(n, to: "/c/r") }
            let first = try await ClientLiveTests.collect(try await client.subscribe("/c/r", as: Int.self, replay: .all), count: 1)
            let epoch = try #require(first.first?.message?.position?.epoch)
            let after = try await ClientLiveTests.collect(try await client.subscribe("/c/r", as: Int.self, replay: .after(offset: 6, epoch: epoch)), count: 2)
            #expect(values(after) == [7, 8])
            let expired = await #expect(throws: HeraldClientError.self) {
                _ = try await client.subscribe("/c/r", replay: .after(offset: 1, epoch: epoch))
            }
            #expect(expired?.code == .replayPositionLost)
            let otherEpoch = await #expect(throws: HeraldClientError.self) {
                _ = try await client.subscribe("/c/r", replay: .after(offset: 7, epoch: "feedfacefeedface"))
            }
            #expect(otherEpoch?.bayeuxCode == 409)
        }
        await node.stop()
        await fixture.destroy()
    }

    @Test(arguments: EngineKind.available)
    func aRestartKeepsOffsetsEpochHistoryAndTheRetainedValue(engine: EngineKind) async throws {
        let fixture = try await EngineFixture.make(engine, channels: Self.channels)
        let first = try await fixture.start()
        let epoch = try await first.client().withConnection { client in
            for n in 1...3 { try await client.publish(n, to: "/c/k") }
            let all = try await ClientLiveTests.collect(try await client.subscribe("/c/k", as: Int.self, replay: .all), count: 3)
            return all.first?.message?.position?.epoch
        }
        await first.stop()

        let second = try await fixture.start()
        try await second.client().withConnection { client in
            let latest = try await ClientLiveTests.collect(try await client.subscribe("/c/k", as: Int.self), count: 1)
            #expect(latest.first?.message?.isRetained == true)
            #expect(latest.first?.message?.position == HeraldPosition(epoch: epoch ?? "", offset: 3))
            try await client.publish(4, to: "/c/k")
            let all = try await ClientLiveTests.collect(try await client.subscribe("/c/k", as: Int.self, replay: .all), count: 4)
            #expect(values(all) == [1, 2, 3, 4])
            #expect(offsets(all) == [1, 2, 3, 4])
            #expect(all.allSatisfy { $0.message?.position?.epoch == epoch })
        }
        await second.stop()
        await fixture.destroy()
    }

    /// History older than `historyTTL` is not replayed, before a restart and after it, and
    /// PostgreSQL's table lets it go too; the retained value stays.
    @Test(arguments: EngineKind.available)
    func historyPastItsTTLIsGoneAlsoAfterARestart(engine: EngineKind) async throws {
        let fixture = try await EngineFixture.make(engine, channels: #"{"/t/**": {"retain": true, "historySize": 100, "historyTTL": "1s", "persist": true}}"#)
        let first = try await fixture.start()
        try await first.client().withConnection { client in
            for n in 1...3 { try await client.publish(n, to: "/t/a") }
            try await Task.sleep(for: .milliseconds(1500))
            try await client.publish(4, to: "/t/a")
            let replayed = try await ClientLiveTests.collect(try await client.subscribe("/t/a", as: Int.self, replay: .all), count: 1)
            #expect(values(replayed) == [4], "1, 2 and 3 are older than the TTL")
            #expect(offsets(replayed) == [4])
        }
        await first.stop()

        let second = try await fixture.start()
        try await second.client().withConnection { client in
            let replayed = try await ClientLiveTests.collect(try await client.subscribe("/t/a", as: Int.self, replay: .all), count: 1)
            #expect(values(replayed) == [4])
            #expect(offsets(replayed) == [4])
        }
        if let postgres = fixture.postgres {
            // Trimmed when a node starts (and every 10 s), concurrently with the above.
            let query = #"SELECT string_agg("offset"::text, ',' ORDER BY "offset") FROM herald_messages WHERE channel = '/t/a'"#
            var kept = try await postgres.scalar(query)
            let deadline = ContinuousClock.now + .seconds(5)
            while kept != "4", ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                kept = try await postgres.scalar(query)
            }
            #expect(kept == "4")
        }
        await second.stop()
        await fixture.destroy()
    }

    /// Two nodes on one PostgreSQL: both publish to one channel at once; each node's
    /// subscriber gets every message once, with offsets 1…N, in the same order as the other's,
    /// each publisher's messages in its own order. A channel without a log crosses too.
    @Test(.enabled(if: EngineKind.postgresEnabled, "needs postgresql; .ci/run sets HERALD_POSTGRES=1"))
    func twoNodesAgreeOnOffsetsAndOrder() async throws {
        let fixture = try await EngineFixture.make(.postgres, channels: Self.channels.replacingOccurrences(of: #""historySize": 5"#, with: #""historySize": 1000"#))
        let a = try await fixture.start(node: "a")
        let b = try await fixture.start(node: "b")
        let clientA = a.client()
        let clientB = b.client()
        let runA = Task { try await clientA.run() }
        let runB = Task { try await clientB.run() }
        let onA = try await clientA.subscribe("/c/shared", as: Int.self)
        let onB = try await clientB.subscribe("/c/shared", as: Int.self)
        let liveOnB = try await clientB.subscribe("/plain/live", as: Int.self)
        async let fromA: Void = { for n in 1...100 { try await clientA.publish(n, to: "/c/shared") } }()
        async let fromB: Void = { for n in 101...200 { try await clientB.publish(n, to: "/c/shared") } }()
        _ = try await (fromA, fromB)
        try await clientA.publish(7, to: "/plain/live")

        let seenA = try await ClientLiveTests.collect(onA, count: 200, seconds: 20)
        let seenB = try await ClientLiveTests.collect(onB, count: 200, seconds: 20)
        #expect(offsets(seenA) == Array(1...200))
        #expect(values(seenA) == values(seenB), "both nodes deliver the channel in one order")
        #expect(values(seenA).filter { $0 <= 100 } == Array(1...100))
        #expect(values(seenA).filter { $0 > 100 } == Array(101...200))
        #expect(values(try await ClientLiveTests.collect(liveOnB, count: 1)) == [7])

        let nodes = try await a.broker.clusterNodes()
        #expect(nodes.map(\.id) == ["a", "b"])
        await clientA.close()
        await clientB.close()
        _ = await (runA.result, runB.result)
        await a.stop()
        await b.stop()
        await fixture.destroy()
    }
}
