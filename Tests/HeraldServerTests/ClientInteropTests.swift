import Foundation
import HeraldClient
import Testing

/// HeraldClient against the Faye server (Debian's ruby-faye under puma): a Bayeux client,
/// not a Herald-only one.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "1", "needs ruby-faye and puma; .ci/run sets HERALD_INTEROP=1"))
struct ClientInteropTests {
    @Test(arguments: [HeraldClientConfiguration.Transport.websocket, .longPolling])
    func handshakeSubscribePublishReceiveAgainstFaye(transport: HeraldClientConfiguration.Transport) async throws {
        try await FayeServer.with { faye in
            var configuration = ClientLiveTests.configuration([transport])
            // Faye holds every /meta/connect for its 25 s timeout.
            configuration.requestTimeout = .seconds(40)
            let url = transport == .websocket ? faye.webSocketURL : faye.url
            try await HeraldClient.withConnection(to: url, configuration: configuration, logger: ClientLiveTests.logger) { client in
                var states = client.connectionStates.makeAsyncIterator()
                #expect(await states.next() == .connected(transport: transport))
                let quotes = try await client.subscribe("/stocks/*", as: ClientLiveTests.Quote.self)
                let raw = try await client.subscribe("/stocks/AAPL")
                for n in 1...20 {
                    try await client.publish(ClientLiveTests.Quote(symbol: "AAPL", px: Double(n)), to: "/stocks/AAPL")
                }
                try await client.publish(json: #"{"big":12345678901234567,"text":"hé ☃"}"#, to: "/stocks/AAPL")
                let decoded = try await ClientLiveTests.collect(quotes, count: 20)
                #expect(decoded.compactMap(\.message?.data.px) == (1...20).map(Double.init))
                let bytes = try await ClientLiveTests.collect(raw, count: 21)
                #expect(bytes.count == 21)
                #expect(bytes.last.flatMap { $0.message.map { String(buffer: $0.data) } } == #"{"big":12345678901234567,"text":"hé ☃"}"#)

                // Faye refuses /meta/** publishes too, with its own error string.
                let refused = await #expect(throws: HeraldClientError.self) {
                    try await client.publish(json: "1", to: "/meta/nope")
                }
                #expect(refused?.bayeuxError == "403:/meta/nope:Forbidden channel")
            }
        }
    }
}
