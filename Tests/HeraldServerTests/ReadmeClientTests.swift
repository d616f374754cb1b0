import HeraldClient
import Logging
import Testing

// README: SDK (begin)
struct Quote: Codable, Sendable {
    var symbol: String
    var px: Double
}

/// Subscribes to every stock, publishes one quote, and returns the first quote received.
func firstQuote(url: String, logger: Logger) async throws -> Quote? {
    try await HeraldClient.withConnection(to: url, logger: logger) { client in
        let quotes = try await client.subscribe("/stocks/*", as: Quote.self)
        try await client.publish(Quote(symbol: "AAPL", px: 189.2), to: "/stocks/AAPL")  // returns on the ack
        for try await event in quotes {
            switch event {
            case .message(let quote): return quote.data
            case .gap(let gap): logger.warning("missed messages: \(gap)")
            }
        }
        return nil
    }
}
// README: SDK (end)

/// README's SDK snippet, compiled (its loop never ends, so it is not run).
func readmeSnippet(logger: Logger) async throws {
    // README: SDK in brief (begin)
    try await HeraldClient.withConnection(to: "ws://127.0.0.1:8080/bayeux", logger: logger) { client in
        let quotes = try await client.subscribe("/stocks/*", as: Quote.self)
        try await client.publish(Quote(symbol: "AAPL", px: 189.2), to: "/stocks/AAPL")
        for try await event in quotes { print(event) }
    }
    // README: SDK in brief (end)
}

/// docs/swift-sdk.md's "Using the Swift SDK" example (the same code, compiled here, and run),
/// and README's snippet of it.
@Suite struct ReadmeClientTests {
    @Test func readmeShowsTheCodeThisFileCompiles() throws {
        let block = try ReadmeEmbeddingTests.readmeBlock("docs/swift-sdk.md", after: "## Using the Swift SDK", marker: "SDK", in: #filePath)
        #expect(!block.compiled.isEmpty)
        #expect(block.imports == ["import HeraldClient", "import Logging", ""])
        #expect(block.readme == block.compiled)

        let snippet = try ReadmeEmbeddingTests.readmeBlock(after: "## Swift SDK and embedding", marker: "SDK in brief", in: #filePath)
        #expect(!snippet.compiled.isEmpty)
        #expect(snippet.readme == snippet.compiled)
    }

    @Test func theExampleReceivesItsQuote() async throws {
        try await withLiveServer { live in
            let quote = try await firstQuote(url: "ws://127.0.0.1:\(live.port)/bayeux", logger: ClientLiveTests.logger)
            #expect(quote?.symbol == "AAPL" && quote?.px == 189.2)
        }
    }
}
