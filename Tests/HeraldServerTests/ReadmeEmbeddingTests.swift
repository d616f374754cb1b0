import Foundation
import HeraldConfiguration
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

/// The settings `herald serve` would use, read as README shows.
func readSettings() throws -> (Broker, HeraldServer) {
    // README: Configuration (begin)
    let settings = try HeraldConfiguration(environment: ProcessInfo.processInfo.environment)
    let broker = Broker(configuration: settings.broker)
    let server = HeraldServer(broker: broker, configuration: settings.server)
    // README: Configuration (end)
    return (broker, server)
}

/// docs/embedding.md's examples, compiled here and run: the code between the markers above
/// must be the page's, character for character (less indentation), and it must work.
@Suite struct ReadmeEmbeddingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The lines between the first line starting with `begin` (after indentation) and the
    /// next starting with `end`, without the indentation of the first.
    static func lines(of text: some StringProtocol, from begin: String, to end: String) -> [Substring] {
        let all = text.split(separator: "\n", omittingEmptySubsequences: false).map { Substring($0) }
        guard let start = all.firstIndex(where: { $0.drop(while: { $0 == " " }).hasPrefix(begin) }),
            let stop = all[(start + 1)...].firstIndex(where: { $0.drop(while: { $0 == " " }).hasPrefix(end) })
        else { return [] }
        let indent = all[start].prefix(while: { $0 == " " }).count
        return all[(start + 1)..<stop].map { $0.dropFirst(min(indent, $0.prefix(while: { $0 == " " }).count)) }
    }

    /// The Swift block after `heading` in `document` (a path from the repository's root), less
    /// its import lines, next to the code between `marker`'s begin and end lines in `file`.
    static func readmeBlock(_ document: String = "README.md", after heading: String, marker: String, in file: String = #filePath) throws -> (readme: [Substring], compiled: [Substring], imports: [Substring]) {
        let readme = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)
        let section = readme[readme.range(of: heading)!.upperBound...]
        let block = lines(of: section, from: "```swift", to: "```")
        let source = try String(contentsOf: URL(fileURLWithPath: file), encoding: .utf8)
        let compiled = lines(of: source, from: "// README: \(marker) (begin)", to: "// README: \(marker) (end)")
        let imports = block.prefix { $0.hasPrefix("import ") || $0.isEmpty }
        return (Array(block.dropFirst(imports.count)), compiled, Array(imports))
    }

    @Test func readmeShowsTheCodeThisFileCompiles() throws {
        let embedding = try Self.readmeBlock("docs/embedding.md", after: "# Embedding Herald", marker: "Embedding")
        #expect(!embedding.compiled.isEmpty)
        #expect(embedding.imports.contains("import HeraldCore") && embedding.imports.contains("import HeraldServer"))
        #expect(embedding.readme == embedding.compiled)

        let configuration = try Self.readmeBlock("docs/embedding.md", after: "use the `HeraldConfiguration`", marker: "Configuration")
        #expect(!configuration.compiled.isEmpty)
        #expect(configuration.imports.contains("import HeraldConfiguration"))
        #expect(configuration.readme == configuration.compiled)
    }

    @Test func readmeReadsTheSettingsOfHeraldServe() throws {
        let (broker, server) = try readSettings()
        // With no HERALD_* variables set in the test run: herald serve's defaults.
        #expect(broker.configuration.maxMessageBytes == BrokerConfiguration().maxMessageBytes)
        #expect(server.configuration.path == ProcessInfo.processInfo.environment["HERALD_PATH"] ?? "/bayeux")
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

        // Cancelling the service group shuts the broker down, without an error, and frees
        // the port.
        running.cancel()
        if case .failure(let error) = await running.result { Issue.record("the service group failed: \(error)") }
        let rebound = try await ServerBootstrap(group: LiveServer.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port).get()
        try await rebound.close()
    }

    /// A port no one listens on now (bound to 127.0.0.1:0, then released).
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: LiveServer.group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }
}
