// HeraldClient throughput and memory (issue 13). Opt-in target:
//   HERALD_CLIENT_BENCH=1 swift run -c release herald-client-bench
// One process: a Herald broker and server on 127.0.0.1, and the SDK over WebSocket loopback.
// The server shares the machine's cores with the client, so these are lower bounds.
import Foundation
import HeraldClient
import HeraldCore
import HeraldProtocol
import HeraldServer
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

struct Tick: Codable, Sendable {
    var s: String
    var px: Double
    var n: Int
}

var logger = Logger(label: "bench")
logger.logLevel = .error
let log = logger
var brokerConfiguration = BrokerConfiguration()
brokerConfiguration.maxSubscriptionsPerSession = 20_000
let broker = Broker(configuration: brokerConfiguration, logger: log)
var serverConfiguration = ServerConfiguration()
serverConfiguration.host = "127.0.0.1"
serverConfiguration.port = 0
let server = HeraldServer(broker: broker, configuration: serverConfiguration, logger: log)
let port = try await server.start().port!
let url = "ws://127.0.0.1:\(port)/bayeux"
let housekeeping = Task { try await BrokerService(broker: broker).run() }
let seconds = Double(ProcessInfo.processInfo.environment["BENCH_SECONDS"] ?? "5") ?? 5

/// Resident memory, from /proc/self/statm (Linux), in bytes.
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Messages per second one subscriber receives while the broker publishes as fast as it can.
func receiveRate<P: Sendable>(_ subscribe: @Sendable (HeraldClient) async throws -> HeraldSubscription<P>) async throws -> Double {
    try await HeraldClient.withConnection(to: url, logger: log) { client in
        let subscription = try await subscribe(client)
        let channel = ChannelName("/bench/feed")!
        let payload = #"{"s":"AAPL","px":189.25,"n":1}"#
        let publishing = Task.detached {
            while !Task.isCancelled {
                for _ in 0..<1000 { _ = try? broker.publish(channel, json: payload) }
                await Task.yield()
            }
        }
        var count = 0
        let start = ContinuousClock.now
        var iterator = subscription.makeAsyncIterator()
        while let event = try await iterator.next() {
            if event.message != nil { count += 1 }
            if count % 10_000 == 0, ContinuousClock.now - start > .seconds(seconds) { break }
        }
        let elapsed = ContinuousClock.now - start
        publishing.cancel()
        await subscription.unsubscribe()
        return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}

let raw = try await receiveRate { try await $0.subscribe("/bench/feed") }
print(String(format: "subscriber, raw JSON:      %10.0f messages/s", raw))
let decoded = try await receiveRate { try await $0.subscribe("/bench/feed", as: Tick.self) }
print(String(format: "subscriber, decoded Tick:  %10.0f messages/s", decoded))

// One publisher, acks pipelined: `window` publishes in flight.
let window = 256
let published = try await HeraldClient.withConnection(to: url, logger: log) { client in
    let total = Int(seconds * 50_000)
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for n in 0..<total {
            if n >= window { try await group.next() }
            group.addTask { try await client.publish(json: #"{"s":"AAPL","px":189.25}"#, to: "/bench/pub") }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}
print(String(format: "publisher, %d in flight:  %10.0f acks/s", window, published))

// Memory of 1,000 subscriptions: resident growth over 10,000 (client and server sides both
// grow in this one process, so this overstates the client's share), divided by 10.
let growth = try await HeraldClient.withConnection(to: url, logger: log) { client in
    var subscriptions: [HeraldSubscription<ByteBuffer>] = []
    let before = residentBytes()
    for n in 0..<10_000 { subscriptions.append(try await client.subscribe("/bench/many/\(n)")) }
    let after = residentBytes()
    _ = subscriptions.count
    return after - before
}
print(String(format: "1,000 subscriptions:       %10.2f MiB resident (client + server)", Double(growth) / 10 / 1_048_576))

await server.shutdown()
housekeeping.cancel()
