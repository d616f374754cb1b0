import Foundation
import HeraldAdmin
import HeraldCore
import HeraldServer
import Logging
import Testing

/// README's quick start (`herald sub` and `herald pub`) and docs/clients.md's curl session,
/// run as they are against a live server (and its admin API without a token, as `herald
/// serve` starts them); only the ports, and the built `herald` for `swift run`, are this
/// test's.
@Suite struct ReadmeQuickStartTests {
    @Test func theQuickStartDeliversTheFirstMessage() async throws {
        let readme = try String(contentsOf: ReadmeEmbeddingTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = readme[readme.range(of: "## Quick start")!.upperBound...]
        let subscribe = ReadmeEmbeddingTests.lines(of: section[try #require(section.range(of: "In a second terminal")).upperBound...], from: "```sh", to: "```")
        let publish = ReadmeEmbeddingTests.lines(of: section[try #require(section.range(of: "In a third")).upperBound...], from: "```sh", to: "```")
        #expect(subscribe == ["swift run -c release herald sub /hello"])
        #expect(publish == [#"swift run -c release herald pub /hello '{"text":"hi"}'"#])
        let printed = try #require(section.range(of: "The subscriber prints `").map { section[$0.upperBound...].prefix { $0 != "`" } })
        try await withLiveServer { live in
            let environment = ["HERALD_URL": "ws://127.0.0.1:\(live.port)/bayeux"]
            func command(_ line: Substring) -> String {
                line.replacingOccurrences(of: "swift run -c release herald", with: "'\(CrashTests.heraldBinary.path)'")
            }
            // The subscriber runs until its first message (--count 1 instead of Ctrl-C).
            let subscriber = Task { try await ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), ["-c", command(subscribe[0]) + " --count 1"], environment: environment) }
            let deadline = ContinuousClock.now + .seconds(20)
            while live.broker.statistics.subscriptions == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let published = try await ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), ["-c", command(publish[0])], environment: environment)
            #expect(published.status == 0, "\(published.output)")
            let received = try await subscriber.value
            #expect(received.status == 0, "\(received.output)")
            #expect(received.output.trimmingCharacters(in: .whitespacesAndNewlines) == String(printed))
        }
    }

    @Test func theCurlSessionDeliversTheFirstMessage() async throws {
        let clients = try String(contentsOf: ReadmeEmbeddingTests.root.appendingPathComponent("docs/clients.md"), encoding: .utf8)
        let start = try #require(clients.range(of: "Or by hand with nothing but curl"))
        let block = ReadmeEmbeddingTests.lines(of: clients[start.upperBound...], from: "```sh", to: "```").joined(separator: "\n")
        #expect(block.contains("127.0.0.1:8080") && block.contains("127.0.0.1:8081"))
        try await withLiveServer { live in
            var configuration = AdminConfiguration()
            configuration.port = 0
            var logger = Logger(label: "herald.test.quickstart")
            logger.logLevel = .critical
            let (bound, continuation) = AsyncStream.makeStream(of: Int.self)
            let server = live.server
            let admin = try AdminServer(
                broker: live.broker, configuration: configuration,
                dataPlane: AdminDataPlane(connections: { server.connectionsByTransport }, isReady: { server.isServing }, traffic: { server.traffic.totals }),
                eventLoopGroup: LiveServer.group, logger: logger, onListening: { continuation.yield($0.port ?? 0) }
            )
            let running = Task { try await admin.run() }
            defer { running.cancel() }
            var ports = bound.makeAsyncIterator()
            let adminPort = try #require(await ports.next())
            let script = "set -euo pipefail\n" + block
                .replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(live.port)")
                .replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(adminPort)")
            let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), ["-c", script])
            #expect(status == 0, "\(output)")
            #expect(output.contains(#"{"channel":"/hello","data":{"text":"hi"}}"#), "\(output)")
            #expect(output.contains(#""successful":true"#), "\(output)")
            running.cancel()
            _ = await running.result
        }
    }
}
