import HeraldCore
import HeraldServer
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A Herald server on 127.0.0.1 and a port the OS chose, for one test.
struct LiveServer {
    let broker: Broker
    let server: HeraldServer
    let port: Int
    /// Runs `BrokerService`, as `herald serve` does.
    let housekeeping: Task<Void, any Error>

    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    /// For tests that flood a server on purpose: a long read burst on one of `group`'s loops
    /// would stall every other test's connections on that loop.
    static let floodGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func start(
        clock: any BrokerClock = SystemBrokerClock(),
        store: (any MessageStore)? = nil,
        broker configure: (inout BrokerConfiguration) -> Void = { _ in },
        server configureServer: (inout ServerConfiguration) -> Void = { _ in },
        group: MultiThreadedEventLoopGroup = LiveServer.group
    ) async throws -> LiveServer {
        var brokerConfiguration = BrokerConfiguration()
        brokerConfiguration.sweepIntervalMilliseconds = 100
        configure(&brokerConfiguration)
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.host = "127.0.0.1"
        serverConfiguration.port = 0
        configureServer(&serverConfiguration)
        var logger = Logger(label: "herald.test")
        logger.logLevel = .critical
        let broker = Broker(configuration: brokerConfiguration, store: store, clock: clock, logger: logger)
        try await broker.restore()
        let server = HeraldServer(broker: broker, configuration: serverConfiguration, eventLoopGroup: group, logger: logger)
        let address = try await server.start()
        let housekeeping = Task { try await BrokerService(broker: broker).run() }
        return LiveServer(broker: broker, server: server, port: address.port!, housekeeping: housekeeping)
    }

    /// Stops like a graceful shutdown: connections, then the store (committed and closed).
    func stop() async {
        await server.shutdown()
        housekeeping.cancel()
        _ = await housekeeping.result
    }
}

/// Runs `body` against a fresh server and always stops it.
func withLiveServer<T>(
    clock: any BrokerClock = SystemBrokerClock(),
    store: (any MessageStore)? = nil,
    broker configure: (inout BrokerConfiguration) -> Void = { _ in },
    server configureServer: (inout ServerConfiguration) -> Void = { _ in },
    group: MultiThreadedEventLoopGroup = LiveServer.group,
    _ body: (LiveServer) async throws -> T
) async throws -> T {
    let live = try await LiveServer.start(clock: clock, store: store, broker: configure, server: configureServer, group: group)
    do {
        let result = try await body(live)
        await live.stop()
        return result
    } catch {
        await live.stop()
        throw error
    }
}

/// A clock the test moves by hand, so that expiry is tested without depending on load.
final class SteppedClock: BrokerClock {
    let now = Atomic<UInt64>(1_000_000_000)
    func nowNanoseconds() -> UInt64 { now.load(ordering: .relaxed) }
    func advance(milliseconds: Int) { now.add(UInt64(milliseconds) * 1_000_000, ordering: .relaxed) }
}
