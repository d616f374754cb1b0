import Foundation
import HeraldCore
import HeraldProtocol
import HeraldServer
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing

// README: Embedding (begin)
/// Runs a broker inside this service until SIGTERM or SIGINT.
func runBroker(configuration: ServerConfiguration, logger: Logger) async throws {
    let broker = Broker(logger: logger)
    // A message to /service/time is answered privately to its sender.
    broker.registerService(ChannelPattern("/service/time")!) { _ in
        .string(ISO8601DateFormatter().string(from: Date()))
    }
    let server = HeraldServer(broker: broker, configuration: configuration, logger: logger)
    // Services stop in reverse order: the server closes its connections, then the broker
    // ends the sessions and closes its store.
    let services = ServiceGroup(
        services: [BrokerService(broker: broker), server],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    try await services.run()
}
// README: Embedding (end)

/// README's Embedding example, compiled here and run: the code between the markers above must
/// be README's, character for character, and it must serve a client.
@Suite struct ReadmeEmbeddingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The lines between `begin` and `end` (exclusive).
    static func lines(of text: String, from begin: String, to end: String) -> [Substring] {
        let all = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = all.firstIndex(where: { $0.hasPrefix(begin) }),
            let stop = all[(start + 1)...].firstIndex(where: { $0.hasPrefix(end) })
        else { return [] }
        return Array(all[(start + 1)..<stop])
    }

    @Test func readmeShowsTheCodeThisFileCompiles() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = String(readme[readme.range(of: "## Embedding")!.upperBound...])
        let block = Self.lines(of: section, from: "```swift", to: "```")
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let compiled = Self.lines(of: source, from: "// README: Embedding (begin)", to: "// README: Embedding (end)")
        #expect(!compiled.isEmpty)
        // README adds the imports a reader needs; the rest is the function above.
        let imports = block.prefix { $0.hasPrefix("import ") || $0.isEmpty }
        #expect(imports.contains("import HeraldCore") && imports.contains("import HeraldServer"))
        #expect(Array(block.dropFirst(imports.count)) == compiled)
    }

    @Test func theEmbeddedBrokerAnswersAServiceRequest() async throws {
        let port = try await Self.freePort()
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = port
        var logger = Logger(label: "herald.test.embedding")
        logger.logLevel = .critical
        let running = Task { try await runBroker(configuration: configuration, logger: logger) }
        defer { running.cancel() }

        let client = BayeuxTestClient(port: port, transport: .websocket)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                try await client.start()
                break
            } catch where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let ack = try await client.publish("/service/time", "{}")
        #expect(ack["successful"] == .bool(true))
        let answer = try #require(try await client.waitForEvents(1).first)
        #expect(answer["channel"] == .string("/service/time"))
        let time = try #require(answer["data"]?.stringValue)
        #expect(ISO8601DateFormatter().date(from: time) != nil, "\(time)")
        await client.stop()

        // Cancelling the service group shuts the broker down cleanly.
        running.cancel()
        _ = await running.result
    }

    /// A port no one listens on now (bound to 127.0.0.1:0, then released).
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: LiveServer.group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }
}
