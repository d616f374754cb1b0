// HeraldClient throughput and memory (issue 13). Opt-in target:
//   HERALD_CLIENT_BENCH=1 swift run -c release herald-client-bench
// One process: a Herald broker and server on 127.0.0.1, and the SDK over WebSocket loopback.
// The server shares the machine's cores with the client, so these are lower bounds.
//
// Against an external server (compare.sh beside this file runs it next to aiocometd-ng and
// Faye's Ruby client), one figure per invocation and one `RESULT ...` line on stdout:
//   herald-client-bench --url ws://127.0.0.1:PORT/bayeux --mode subscribe-raw|subscribe-decoded|publish
//                       [--seconds 5] [--warmup 1] [--channel /bench/feed] [--window 256]
// Subscribers count the messages received during `--seconds` after `--warmup` (someone
// else feeds the channel); the publisher counts acknowledgements the same way, with
// `--window` publishes in flight.
import Foundation
import HeraldClient
import HeraldCore
import HeraldProtocol
import HeraldServer
import Logging
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct Tick: Codable, Sendable {
    var s: String
    var px: Double
    var n: Int
}

/// Resident memory, from /proc/self/statm (Linux), in bytes.
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Peak resident memory (VmHWM in /proc/self/status), in KiB.
func peakResidentKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
    return 0
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// A counter shared between the receiving (or publishing) task and the sampling one.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    func add() { value.add(1, ordering: .relaxed) }
    func load() -> Int { value.load(ordering: .relaxed) }
}

/// Why the receiving or publishing task ended early, if it did (blanks made `_`, so that the
/// result stays one line of `key=value` words).
final class Failure: Sendable {
    let text = Mutex<String>("")
    func record(_ error: any Error) {
        text.withLock { $0 = "\(error)".split(whereSeparator: \.isWhitespace).joined(separator: "_") }
    }
}

/// Command-line options of the external mode: `--name value` pairs.
func parseOptions() -> [String: String] {
    var options: [String: String] = [:]
    var list = Array(CommandLine.arguments.dropFirst())
    while !list.isEmpty {
        let name = list.removeFirst()
        guard name.hasPrefix("--"), !list.isEmpty else {
            FileHandle.standardError.write(Data("usage: herald-client-bench [--url ws://HOST:PORT/bayeux --mode subscribe-raw|subscribe-decoded|publish [--seconds N] [--warmup S] [--channel C] [--window W]]\n".utf8))
            exit(2)
        }
        options[String(name.dropFirst(2))] = list.removeFirst()
    }
    return options
}

/// One figure against a server started elsewhere; prints
/// `RESULT client=swift-sdk mode=... rate=... count=... seconds=... gaps=... peak_rss_kib=...` and exits.
func runExternal(_ options: [String: String]) async throws -> Never {
    let url = options["url"]!
    let mode = options["mode"] ?? "subscribe-raw"
    let measured = Double(options["seconds"] ?? "5") ?? 5
    let warmup = Double(options["warmup"] ?? "1") ?? 1
    let channel = options["channel"] ?? "/bench/feed"
    let window = Int(options["window"] ?? "256") ?? 256
    guard ["subscribe-raw", "subscribe-decoded", "publish"].contains(mode) else {
        FileHandle.standardError.write(Data("unknown --mode \(mode)\n".utf8))
        exit(2)
    }
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    var configuration = HeraldClientConfiguration()
    configuration.transports = [.websocket]
    configuration.reconnect = .never
    let counter = Counter()
    let gaps = Counter()
    let failure = Failure()
    @Sendable func fail(_ error: any Error) { failure.record(error) }

    try await HeraldClient.withConnection(to: url, configuration: configuration, logger: logger) { client in
        let work: Task<Void, any Error>
        switch mode {
        case "subscribe-raw":
            let subscription = try await client.subscribe(channel)
            work = Task {
                do {
                    for try await event in subscription {
                        if event.message != nil { counter.add() } else { gaps.add() }
                    }
                } catch { fail(error) }
            }
        case "subscribe-decoded":
            let subscription = try await client.subscribe(channel, as: Tick.self)
            work = Task {
                do {
                    for try await event in subscription {
                        // Read the decoded value, so that nothing is optimised away.
                        if let message = event.message { if message.data.n >= 0 { counter.add() } } else { gaps.add() }
                    }
                } catch { fail(error) }
            }
        default:
            let payload = ByteBuffer(string: #"{"s":"AAPL","px":189.25,"n":1}"#)
            // `window` publishes in flight, from a task group (as the in-process figure).
            work = Task {
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        var started = 0
                        while !Task.isCancelled {
                            if started >= window { try await group.next() }
                            group.addTask {
                                try await client.publish(json: payload, to: channel)
                                counter.add()
                            }
                            started += 1
                        }
                        group.cancelAll()
                    }
                } catch { fail(error) }
            }
        }
        try await Task.sleep(for: .seconds(warmup))
        let start = ContinuousClock.now
        let first = counter.load()
        try await Task.sleep(for: .seconds(measured))
        let count = counter.load() - first
        let elapsed = seconds(ContinuousClock.now - start)
        let rate = Double(count) / elapsed
        let error = failure.text.withLock { $0 }
        print("RESULT client=swift-sdk mode=\(mode) rate=\(Int(rate.rounded())) count=\(count) seconds=\(String(format: "%.2f", elapsed)) gaps=\(gaps.load()) peak_rss_kib=\(peakResidentKiB())\(error.isEmpty ? "" : " error=\(error)")")
        work.cancel()
        fflush(nil)  // every stream: stdout is not concurrency-safe to name here
        // Exit at once: a subscriber may hold a backlog that a graceful close would wait for.
        exit(0)
    }
    exit(0)
}

let options = parseOptions()
if options["url"] != nil {
    do {
        try await runExternal(options)
    } catch {
        FileHandle.standardError.write(Data("herald-client-bench: \(error)\n".utf8))
        exit(1)
    }
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
let benchSeconds = Double(ProcessInfo.processInfo.environment["BENCH_SECONDS"] ?? "5") ?? 5

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
            if count % 10_000 == 0, ContinuousClock.now - start > .seconds(benchSeconds) { break }
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
    let total = Int(benchSeconds * 50_000)
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
