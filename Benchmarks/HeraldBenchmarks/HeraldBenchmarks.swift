// Herald microbenchmarks (ordo-one/benchmark). Only built with HERALD_BENCHMARKS set; see
// Benchmarks/README.md for how to run them and what was measured.
//
// Everything goes through Herald's public and package API, as an embedding application or a transport
// would: sessions are made with `Broker.process` (handshake, connect, subscribe) on an
// in-memory `BayeuxConnection`, and messages are published with `Broker.publish(_: Delivery)`.

import Benchmark
import HeraldCore
import HeraldProtocol
import Logging
import NIOCore
import Synchronization

// MARK: - In-memory transport

/// A WebSocket-like connection that drains its session as soon as it is told that messages
/// are waiting, the way `MemoryConnection` in the core tests does, but without parsing or
/// copying them: it only counts messages and bytes, so it allocates nothing itself. The drain
/// therefore runs inside the measured region of the publish benchmarks.
final class BenchConnection: BayeuxConnection {
    let notifications = Atomic<Int>(0)
    let drainedMessages = Atomic<Int>(0)
    let drainedBytes = Atomic<Int>(0)
    let closed = Atomic<Bool>(false)

    func messagesAvailable(_ session: Session) {
        notifications.add(1, ordering: .relaxed)
        var bytes = 0
        let count = session.drain(for: self) { _, queuedBytes in bytes = queuedBytes }
        drainedMessages.add(count, ordering: .relaxed)
        drainedBytes.add(bytes, ordering: .relaxed)
    }

    func sessionClosed(_ session: Session, reason: CloseReason) {
        closed.store(true, ordering: .relaxed)
    }

    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer]) {}
}

/// Sends one batch of JSON text to the broker on `connection`, as a WebSocket transport would.
@discardableResult
func send(_ broker: Broker, _ json: String, on connection: BenchConnection) -> BatchResult {
    let messages = try! MessageCodec.decodeBatch(ByteBuffer(string: json))
    return broker.process(messages, type: .websocket, connection: connection)
}

/// Handshakes, connects over "websocket" and subscribes to `subscriptions`. Returns the clientId.
@discardableResult
func addClient(_ broker: Broker, subscriptions: [String], connection: BenchConnection = BenchConnection()) -> (clientId: String, connection: BenchConnection) {
    let handshake = send(broker, #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"h"}]"#, on: connection)
    let reply = try! JSONParser.parse(String(buffer: handshake.replies[0]))
    guard let clientId = reply.objectValue?["clientId"]?.stringValue else { fatalError("handshake failed: \(reply)") }
    send(broker, #"[{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"websocket","id":"c"}]"#, on: connection)
    if !subscriptions.isEmpty {
        let list = "[" + subscriptions.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        let result = send(broker, #"[{"channel":"/meta/subscribe","clientId":"\#(clientId)","subscription":\#(list),"id":"s"}]"#, on: connection)
        let subscribed = try! JSONParser.parse(String(buffer: result.replies[0]))
        guard subscribed.objectValue?["successful"] == .bool(true) else { fatalError("subscribe failed: \(subscribed)") }
    }
    return (clientId, connection)
}

func makeBroker() -> Broker {
    // No logging in the measured code paths.
    Broker(logger: Logger(label: "herald.bench", factory: { _ in SwiftLogNoOpLogHandler() }))
}

/// A JSON payload of exactly `size` bytes: `{"text":"xxx…"}`.
func payload(bytes size: Int) -> ByteBuffer {
    let overhead = #"{"text":""}"#.utf8.count
    return ByteBuffer(string: #"{"text":""# + String(repeating: "x", count: size - overhead) + #""}"#)
}

func channel(_ name: String) -> ChannelName {
    guard let channel = ChannelName(name) else { fatalError("bad channel \(name)") }
    return channel
}

// MARK: - Fixtures

/// 10,000 sessions, session i subscribed to `/bench/c/<i>`, plus two wildcard sessions that
/// match every one of those channels (`/bench/c/*` and `/bench/c/**`) and one helper session
/// whose `/zz/**` subscription is toggled to clear the broker's match cache.
final class TrieFixture: @unchecked Sendable {
    static let literalChannels = 10_000
    /// More than `SubscriptionIndex.maxCachedChannels` (32,768), so that a name cycled
    /// through has always been evicted from the match cache before it comes round again.
    static let missChannels = 65_536

    let broker = makeBroker()
    let hits: [Delivery]
    let misses: [Delivery]
    let helper: BenchConnection
    let subscribeHelper: [BayeuxMessage]
    let unsubscribeHelper: [BayeuxMessage]
    var next = 0
    var helperSubscribed = false

    init() {
        let data = payload(bytes: 100)
        for i in 0..<Self.literalChannels {
            addClient(broker, subscriptions: ["/bench/c/\(i)"])
        }
        addClient(broker, subscriptions: ["/bench/c/*"])
        addClient(broker, subscriptions: ["/bench/c/**"])
        let (helperId, helper) = addClient(broker, subscriptions: [])
        self.helper = helper
        subscribeHelper = try! MessageCodec.decodeBatch(ByteBuffer(string: #"[{"channel":"/meta/subscribe","clientId":"\#(helperId)","subscription":"/zz/**","id":"s"}]"#))
        unsubscribeHelper = try! MessageCodec.decodeBatch(ByteBuffer(string: #"[{"channel":"/meta/unsubscribe","clientId":"\#(helperId)","subscription":"/zz/**","id":"u"}]"#))
        hits = (0..<Self.literalChannels).map { Delivery(channel: channel("/bench/c/\($0)"), data: data) }
        misses = (0..<Self.missChannels).map { Delivery(channel: channel("/bench/u/\($0)"), data: data) }
        precondition(broker.subscriptionCount == Self.literalChannels + 2)
    }

    func nextHit() -> Delivery {
        next = next == hits.count - 1 ? 0 : next + 1
        return hits[next]
    }

    func nextMiss() -> Delivery {
        next = next == misses.count - 1 ? 0 : next + 1
        return misses[next]
    }

    /// Any change to a wildcard subscription empties the whole match cache.
    func clearMatchCache() {
        _ = broker.process(helperSubscribed ? unsubscribeHelper : subscribeHelper, type: .websocket, connection: helper)
        helperSubscribed.toggle()
    }
}

/// `subscribers` sessions, each on its own connection, all subscribed to `/fan/out`.
final class FanOutFixture: @unchecked Sendable {
    let broker = makeBroker()
    let delivery = Delivery(channel: channel("/fan/out"), data: payload(bytes: 100))
    let connections: [BenchConnection]

    init(subscribers: Int) {
        connections = (0..<subscribers).map { _ in BenchConnection() }
        for connection in connections {
            addClient(broker, subscriptions: ["/fan/out"], connection: connection)
        }
        precondition(broker.subscriptionCount == subscribers)
    }
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]
    // Allocation counts are (nearly) exact, so they are checked tightly: at most one allocation
    // more or less per measured iteration at p90, or 2% for the `.kilo` benchmarks (0.02 per
    // operation). Timings on a shared 2-vCPU VM are too noisy to gate on: only mallocCountTotal
    // is recorded in Thresholds/, so `thresholds check` looks at nothing else.
    let perIteration: [BenchmarkMetric: BenchmarkThresholds] = [.mallocCountTotal: .init(absolute: [.p90: 1])]
    let perThousand: [BenchmarkMetric: BenchmarkThresholds] = [.mallocCountTotal: .init(relative: [.p90: 2.0])]
    Benchmark.defaultConfiguration = .init(
        metrics: metrics,
        warmupIterations: 100,
        maxDuration: .seconds(1),
        maxIterations: 100_000,
        thresholds: perIteration
    )
    /// For operations of well under a microsecond: 1,000 per measured iteration. Figures are
    /// shown per operation; the raw values in Thresholds/ are per 1,000.
    let tight = Benchmark.Configuration(
        metrics: metrics,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 10_000,
        thresholds: perThousand
    )

    // MARK: Trie match

    Benchmark("TrieMatch.cachedMiss", configuration: tight) { benchmark, fixture in
        let delivery = fixture.misses[0]
        for _ in benchmark.scaledIterations {
            blackHole(fixture.broker.publish(delivery))
        }
    } setup: {
        TrieFixture()
    }

    Benchmark("TrieMatch.uncachedMiss") { benchmark, fixture in
        let delivery = fixture.nextMiss()
        benchmark.startMeasurement()
        blackHole(fixture.broker.publish(delivery))
        benchmark.stopMeasurement()
    } setup: {
        TrieFixture()
    }

    Benchmark("TrieMatch.cachedHit.3subscribers", configuration: tight) { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            let delivered = fixture.broker.publish(fixture.nextHit())
            precondition(delivered == 3)
        }
    } setup: {
        TrieFixture()
    }

    Benchmark("TrieMatch.uncachedHit.3subscribers") { benchmark, fixture in
        let delivery = fixture.nextHit()
        fixture.clearMatchCache()
        benchmark.startMeasurement()
        let delivered = fixture.broker.publish(delivery)
        benchmark.stopMeasurement()
        precondition(delivered == 3)
    } setup: {
        TrieFixture()
    }

    // MARK: Message encode / decode

    Benchmark("Codec.decodeBatch.publishFrame", configuration: tight) { benchmark, frame in
        for _ in benchmark.scaledIterations {
            blackHole(try! MessageCodec.decodeBatch(frame))
        }
    } setup: {
        ByteBuffer(string: #"[{"channel":"/chat/room-42","clientId":"3f9a1c0e5b7d42e8a6c1f0b9d2e4a7c3","data":{"user":"alice","text":"Hello, everyone! The meeting moved to 3pm.","ts":1764165600000},"id":"17"}]"#)
    }

    Benchmark("Codec.deliveryEncoded.100B", configuration: tight) { benchmark, delivery in
        let allocator = ByteBufferAllocator()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(delivery.encoded(allocator: allocator))
        }
    } setup: {
        Delivery(channel: channel("/chat/room-42"), data: payload(bytes: 100))
    }

    // MARK: Fan-out

    // One publish per iteration. Every subscriber's connection drains its session as soon as it
    // is notified, inside `publish`, so the drain is part of the measured region.
    for subscribers in [1, 100, 1_000] {
        Benchmark("FanOut.publish.\(subscribers)subscribers") { benchmark, fixture in
            let delivered = fixture.broker.publish(fixture.delivery)
            benchmark.stopMeasurement()
            precondition(delivered == subscribers, "a subscriber was cut off")
        } setup: {
            FanOutFixture(subscribers: subscribers)
        }
    }
}
