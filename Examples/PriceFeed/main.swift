// A tiny price feed: a broker embedded in this process, a publisher that talks to it in
// process, and a subscriber that connects over WebSocket as a remote client would.
//
//   swift run PriceFeed            (Ctrl-C to stop)
import HeraldClient
import HeraldCore
import HeraldProtocol
import HeraldServer
import Logging
import ServiceLifecycle
import UnixSignals

struct Quote: Codable, Sendable {
    var symbol: String
    var px: Double
}

let logger = Logger(label: "price-feed")

// The broker keeps the last price of every stock, so a new subscriber gets it first.
var brokerConfiguration = BrokerConfiguration()
brokerConfiguration.channels = try ChannelPolicyTable.parse(JSONParser.parse(#"{"/stocks/**": {"retain": true, "historySize": 100}}"#).objectValue!)
let broker = Broker(configuration: brokerConfiguration, logger: logger)
var serverConfiguration = ServerConfiguration()
serverConfiguration.host = "127.0.0.1"
serverConfiguration.port = 0
let server = HeraldServer(broker: broker, configuration: serverConfiguration, logger: logger)
let address = try await server.start()
let url = "ws://127.0.0.1:\(address.port!)/bayeux"
logger.info("broker listening", metadata: ["url": "\(url)"])

// The publisher: the same client API, in process.
let publisher = HeraldClient(transport: InProcessTransport(broker: broker), logger: logger)
// The subscriber: over WebSocket.
let subscriber = try HeraldClient(url: url, logger: logger)

try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await BrokerService(broker: broker).run() }
    group.addTask { try await publisher.run() }
    group.addTask { try await subscriber.run() }
    group.addTask {
        var px = 189.0
        while !Task.isCancelled {
            px += Double.random(in: -0.5...0.5)
            try await publisher.publish(Quote(symbol: "AAPL", px: (px * 100).rounded() / 100), to: "/stocks/AAPL")
            try await Task.sleep(for: .milliseconds(500))
        }
    }
    group.addTask {
        let quotes = try await subscriber.subscribe("/stocks/*", as: Quote.self)
        for try await event in quotes {
            if let quote = event.message { print(quote.channel, quote.data.px) }
        }
    }
    group.addTask {
        for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return }
    }
    // The first to end is the signal (or a failure): stop everything.
    try await group.next()
    await subscriber.close()
    await publisher.close()
    await server.shutdown()
    group.cancelAll()
}
