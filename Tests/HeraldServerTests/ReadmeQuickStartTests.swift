import Foundation
import HeraldAdmin
import HeraldCore
import HeraldServer
import Logging
import Testing

/// README's quick start, run as it is (curl under bash) against a live server and its admin
/// API without a token, as `herald serve` starts them; only the ports are this test's.
@Suite struct ReadmeQuickStartTests {
    @Test func theQuickStartDeliversTheFirstMessage() async throws {
        let readme = try String(contentsOf: ReadmeEmbeddingTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = readme[readme.range(of: "## Quick start")!.upperBound...]
        let start = try #require(section.range(of: "In a second terminal"))
        let block = ReadmeEmbeddingTests.lines(of: section[start.upperBound...], from: "```sh", to: "```").joined(separator: "\n")
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
