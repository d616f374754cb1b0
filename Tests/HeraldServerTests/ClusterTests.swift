import Foundation
import HeraldClient
import HeraldProtocol
import Synchronization
import Testing

/// Three `herald serve --engine postgres` processes on one real PostgreSQL, as an operator
/// runs them: a publish on one node reaches the others in order, a killed node's clients go on
/// on another with no gap, and a PostgreSQL restart loses no acknowledged message.
///
/// Runs alone, when `HERALD_CLUSTER_TESTS=1` (and `HERALD_POSTGRES=1`): four servers beside the
/// rest of the suite overload a two-core machine. `.ci/run` runs it after the suite:
/// `HERALD_POSTGRES=1 HERALD_CLUSTER_TESTS=1 swift test --skip-build --filter ClusterTests`.
@Suite(.serialized, .enabled(if: EngineKind.postgresEnabled && ProcessInfo.processInfo.environment["HERALD_CLUSTER_TESTS"] == "1", "needs postgresql; .ci/run sets HERALD_POSTGRES=1 HERALD_CLUSTER_TESTS=1"))
struct ClusterTests {
    static let channels = #"{"channels": {"/feed/**": {"retain": true, "historySize": 100000, "persist": true}}}"#

    /// A PostgreSQL and `count` nodes on it, named n1…; stopped and removed after `body`.
    static func withCluster(nodes count: Int, _ body: (PostgresServer, [CrashTests.ServerProcess]) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "herald-cluster-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = directory + "/herald.json"
        try channels.write(toFile: config, atomically: true, encoding: .utf8)
        let postgres = try await PostgresServer.start()
        var nodes: [CrashTests.ServerProcess] = []
        do {
            for n in 1...count {
                let data = directory + "/n\(n)"
                try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
                nodes.append(try await CrashTests.ServerProcess.start(
                    dataDirectory: data, config: config,
                    arguments: ["--engine", "postgres", "--postgres-url", postgres.url, "--node-name", "n\(n)"]))
            }
            try await body(postgres, nodes)
        } catch {
            Self.stop(nodes)
            await postgres.destroy()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        Self.stop(nodes)
        await postgres.destroy()
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func stop(_ nodes: [CrashTests.ServerProcess]) {
        for node in nodes where node.process.isRunning {
            node.process.terminate()
            node.process.waitUntilExit()
        }
    }

    static func configuration(_ transports: [HeraldClientConfiguration.Transport]) -> HeraldClientConfiguration {
        ClientLiveTests.configuration(transports)
    }

    @Test func aPublishOnOneNodeReachesTheOthersInOrder() async throws {
        try await Self.withCluster(nodes: 3) { _, nodes in
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            let overWebSocket = try HeraldClient(url: ClientLiveTests.url(b.port), configuration: Self.configuration([.websocket]), logger: ClientLiveTests.logger)
            let overLongPolling = try HeraldClient(url: ClientLiveTests.url(c.port), configuration: Self.configuration([.longPolling]), logger: ClientLiveTests.logger)
            let running = [Task { try await overWebSocket.run() }, Task { try await overLongPolling.run() }]
            let onB = try await overWebSocket.subscribe("/feed/a", as: Int.self)
            let onC = try await overLongPolling.subscribe("/feed/*", as: Int.self)
            try await HeraldClient.withConnection(to: ClientLiveTests.url(a.port), configuration: Self.configuration([.websocket]), logger: ClientLiveTests.logger) { publisher in
                for n in 1...300 { try await publisher.publish(n, to: "/feed/a") }
            }
            let fromB = try await ClientLiveTests.collect(onB, count: 300)
            let fromC = try await ClientLiveTests.collect(onC, count: 300)
            #expect(fromB.compactMap(\.message?.data) == Array(1...300), "WebSocket subscriber on node B")
            #expect(fromC.compactMap(\.message?.data) == Array(1...300), "long-polling subscriber on node C")
            #expect(fromB.compactMap(\.message?.position?.offset) == Array(1...300))
            #expect(fromC.compactMap(\.message?.position?.offset) == Array(1...300))
            // The admin API lists the three nodes, from any of them, and totals their counters.
            let listing = try await TestHTTP.request("GET", port: a.adminPort, path: "/v1/nodes", on: LiveServer.group)
            let nodesJSON = try JSONParser.parse(listing.text)
            #expect(listing.status == 200)
            #expect(Set(nodesJSON["nodes"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == ["n1", "n2", "n3"])
            #expect(nodesJSON["self"]?.stringValue == "n1")
            // Each message counts as published once, on the node it was published on, though
            // every node delivered it.
            var published: [Int] = []
            for node in nodes {
                let stats = try JSONParser.parse(try await TestHTTP.request("GET", port: node.adminPort, path: "/v1/stats", on: LiveServer.group).text)
                published.append(stats["messages"]?["published"]?["total"]?.intValue ?? -1)
            }
            #expect(published == [300, 0, 0])
            await overWebSocket.close()
            await overLongPolling.close()
            for task in running { _ = try? await task.value }
        }
    }

    /// A subscriber reaches node B through a proxy that fails over to C (as a load balancer
    /// does); B is killed with SIGKILL mid-feed. The client re-handshakes on C and resumes from
    /// its offset: every message once, in order.
    @Test func aKilledNodesClientsResumeOnAnotherWithNoGap() async throws {
        try await Self.withCluster(nodes: 3) { _, nodes in
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            let proxy = try await LoopbackProxy.start(upstreams: [b.port, c.port], on: LiveServer.group)
            let subscriber = try HeraldClient(url: ClientLiveTests.url(proxy.port), configuration: Self.configuration([.websocket]), logger: ClientLiveTests.logger)
            let running = Task { try await subscriber.run() }
            let feed = try await subscriber.subscribe("/feed/k", as: Int.self)
            let total = 600
            try await HeraldClient.withConnection(to: ClientLiveTests.url(a.port), configuration: Self.configuration([.websocket]), logger: ClientLiveTests.logger) { publisher in
                for n in 1...total {
                    try await publisher.publish(n, to: "/feed/k")
                    if n == total / 3 { b.kill9() }
                    if n % 20 == 0 { try await Task.sleep(for: .milliseconds(5)) }
                }
            }
            let events = try await ClientLiveTests.collect(feed, count: total, seconds: 20)
            #expect(events.allSatisfy { $0.message != nil }, "no gap expected")
            #expect(events.compactMap(\.message?.data) == Array(1...total))
            #expect(!b.process.isRunning)
            await subscriber.close()
            _ = try? await running.value
            await proxy.stop()
        }
    }

    /// PostgreSQL stops and starts again while a publisher feeds a logged channel: publishes
    /// during the outage are refused (503), none acknowledged is lost, and both nodes are ready
    /// again by themselves and deliver across.
    @Test func aPostgresRestartLosesNoAcknowledgedMessage() async throws {
        try await Self.withCluster(nodes: 2) { postgres, nodes in
            let (a, b) = (nodes[0], nodes[1])
            var acknowledged: [Int] = []
            var refused = 0
            try await HeraldClient.withConnection(to: ClientLiveTests.url(a.port), configuration: Self.configuration([.websocket]), logger: ClientLiveTests.logger) { publisher in
                for n in 1...1500 {
                    if n == 300 {
                        try await postgres.stop()
                        Task {
                            try await Task.sleep(for: .seconds(1))
                            try await postgres.restart()
                        }
                    }
                    do {
                        try await publisher.publish(n, to: "/feed/p")
                        acknowledged.append(n)
                    } catch let error as HeraldClientError {
                        #expect(error.bayeuxCode == 503, "\(error)")
                        refused += 1
                        try await Task.sleep(for: .milliseconds(2))
                    }
                }
            }
            #expect(refused > 0, "PostgreSQL was away for a second")
            #expect(acknowledged.last == 1500, "publishes succeed again after the restart")
            for node in [a, b] {
                #expect(try await Self.becomesReady(node), "node on \(node.port) ready again")
            }
            // Every acknowledged message is in the shared history, in order, seen from node B.
            try await HeraldClient.withConnection(to: ClientLiveTests.url(b.port), configuration: Self.configuration([.websocket]), logger: ClientLiveTests.logger) { reader in
                let history = try await ClientLiveTests.collect(try await reader.subscribe("/feed/p", as: Int.self, replay: .all), count: acknowledged.count)
                #expect(history.compactMap(\.message?.data) == acknowledged)
                #expect(history.compactMap(\.message?.position?.offset) == Array(1...acknowledged.count))
            }
        }
    }

    static func becomesReady(_ node: CrashTests.ServerProcess) async throws -> Bool {
        for _ in 0..<100 {
            let response = try await TestHTTP.request("GET", port: node.adminPort, path: "/v1/ready", on: LiveServer.group)
            if response.status == 200 { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
