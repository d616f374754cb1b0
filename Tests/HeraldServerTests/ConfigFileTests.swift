import Foundation
import HeraldProtocol
import Testing

/// `herald serve --config` with JSON and YAML files, through the real executable.
@Suite struct ConfigFileTests {
    @Test(arguments: [
        ("json", #"{"channels": {"/stocks/**": {"retain": true, "historySize": 5, "slowConsumer": "conflate", "maxFrequency": 50}}}"#),
        ("yaml", "channels:\n  /stocks/**:\n    retain: true\n    historySize: 5\n    slowConsumer: conflate\n    maxFrequency: 50\n"),
    ])
    func retainedChannelFromAConfigFile(format: String, text: String) async throws {
        let (directory, config) = try Self.write(text, as: "\(format)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await CrashTests.ServerProcess.start(dataDirectory: directory, config: config)
        defer { server.process.terminate(); server.process.waitUntilExit() }
        let publisher = try await RawBayeuxSocket.connect(port: server.port)
        _ = try await publisher.exchange([#"{"channel":"/stocks/AAPL","clientId":"\#(publisher.clientId)","data":{"p":1},"id":"1"}"#], expectReplies: 1)
        let subscriber = try await RawBayeuxSocket.connect(port: server.port)
        _ = try await subscriber.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(subscriber.clientId)","subscription":"/stocks/*","id":"s"}"#], expectReplies: 1)
        let retained = try await subscriber.events(1)
        #expect(retained.first?["data"]?["p"] == .number("1"))
        #expect(retained.first?["ext"]?["herald"]?["retained"] == .bool(true))
        await publisher.close()
        await subscriber.close()
    }

    /// README's stock-feed `herald.json`, as it is, under `herald serve`: clients cannot
    /// publish a price, the admin API can, and subscribers get it retained.
    @Test func readmeStockFeedTakesPricesFromTheServerOnly() async throws {
        let readme = try String(contentsOf: ReadmeEmbeddingTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = readme[try #require(readme.range(of: "For a stock feed, `herald.json`:")).upperBound...]
        let json = ReadmeEmbeddingTests.lines(of: section, from: "```json", to: "```").joined(separator: "\n")
        #expect(json.contains(#""publish": "server""#))
        let (directory, config) = try Self.write(json, as: "json")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await CrashTests.ServerProcess.start(dataDirectory: directory, config: config)
        defer { server.process.terminate(); server.process.waitUntilExit() }

        let client = try await RawBayeuxSocket.connect(port: server.port)
        let refused = try await client.exchange([#"{"channel":"/stocks/AAPL","clientId":"\#(client.clientId)","data":{"px":1},"id":"1"}"#], expectReplies: 1)
        #expect(refused.first?["error"] == .string("403:/stocks/AAPL:Publish not allowed"))
        let published = try await TestHTTP.request("POST", port: server.adminPort, path: "/v1/publish", headers: [("Content-Type", "application/json")], body: Array(#"{"channel":"/stocks/AAPL","data":{"px":189.5}}"#.utf8), on: LiveServer.group)
        #expect(published.status == 200, "\(published.text)")
        _ = try await client.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(client.clientId)","subscription":"/stocks/*","id":"s"}"#], expectReplies: 1)
        let retained = try await client.events(1)
        #expect(retained.first?["data"]?["px"] == .number("189.5"))
        await client.close()
    }

    @Test(arguments: [
        ("json", #"{"channels": {"/stocks/**": {"retain": "yes"}}}"#, "channels./stocks/**.retain: expected true or false"),
        ("yaml", "channels:\n  /a/*/b:\n    retain: true\n", "'/a/*/b' is not a valid channel pattern"),
        ("json", #"{"chanels": {}}"#, "unknown setting 'chanels'"),
    ])
    func badConfigurationStopsStartUpWithAClearMessage(format: String, text: String, message: String) async throws {
        let (directory, config) = try Self.write(text, as: "\(format)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = CrashTests.heraldBinary
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--data-dir", directory, "--config", config]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let output = try await ChildProcess.offThePool {
            let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return output
        }
        #expect(process.terminationStatus != 0)
        #expect(output.contains(message), "\(output)")
    }

    /// A fresh data directory holding `text` as `herald.<format>`: both paths.
    static func write(_ text: String, as format: String) throws -> (directory: String, config: String) {
        let directory = NSTemporaryDirectory() + "herald-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = directory + "/herald.\(format)"
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        return (directory, config)
    }
}
