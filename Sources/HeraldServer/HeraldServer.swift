import HeraldCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// The data-plane listener: one port serving WebSocket upgrades, long-polling and
/// callback-polling at `configuration.path`.
///
/// As a `Service` it binds on `run()`, serves until graceful shutdown, then stops accepting,
/// ends every session with `reconnect: retry` (held connects are answered, WebSockets closed
/// with 1001) and closes the remaining connections.
public final class HeraldServer: Service, Sendable {
    public let broker: Broker
    public let configuration: ServerConfiguration
    let group: any EventLoopGroup
    let logger: Logger
    let state = Mutex<State>(State())
    let onListening: (@Sendable (SocketAddress) -> Void)?

    struct State {
        var serverChannel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var schedulers: [ObjectIdentifier: FlushScheduler] = [:]
        var upgrader: NIOWebSocketServerUpgrader?
    }

    public init(
        broker: Broker,
        configuration: ServerConfiguration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "herald.server"),
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) {
        self.broker = broker
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.onListening = onListening
    }

    /// The bound address, once started.
    public var localAddress: SocketAddress? {
        state.withLock { $0.serverChannel?.localAddress }
    }

    public var port: Int? { localAddress?.port }

    public var connectionCount: Int { state.withLock { $0.connections.count } }

    public func run() async throws {
        let address = try await start()
        onListening?(address)
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Binds and starts accepting. Returns the bound address.
    @discardableResult
    public func start() async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.writeBufferLowWaterMarkBytes, high: configuration.writeBufferHighWaterMarkBytes))
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Bayeux frames from subscribers are small; start reads at 1 KiB rather than NIO's
            // 2 KiB default (it grows for publishers) to keep idle connections cheap.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 1024, maximum: 256 * 1024))
            .childChannelInitializer { [self] channel in
                self.initializeChild(channel)
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLock { $0.serverChannel = channel }
        logger.info("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "path": "\(configuration.path)"])
        return channel.localAddress!
    }

    /// Stops accepting, ends all sessions and closes every connection.
    public func shutdown() async {
        let server = state.withLock { s -> (any Channel)? in
            defer { s.serverChannel = nil }
            return s.serverChannel
        }
        try? await server?.close()
        broker.shutdown()
        // Give close frames and final connect replies a moment to be written.
        try? await Task.sleep(for: .milliseconds(100))
        let open = state.withLock { Array($0.connections.values) }
        for channel in open { try? await channel.close() }
    }

    private func scheduler(for loop: any EventLoop) -> FlushScheduler {
        state.withLock { s in
            let key = ObjectIdentifier(loop)
            if let existing = s.schedulers[key] { return existing }
            let created = FlushScheduler(eventLoop: loop)
            s.schedulers[key] = created
            return created
        }
    }

    /// The WebSocket upgrader, made once and shared by every connection (it is stateless).
    private func webSocketUpgrader() -> NIOWebSocketServerUpgrader {
        if let existing = state.withLock({ $0.upgrader }) { return existing }
        let broker = self.broker
        let configuration = self.configuration
        let logger = self.logger
        let cors = CORSPolicy(allowedOrigins: configuration.allowedOrigins)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: broker.configuration.maxBatchBytes,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                guard HTTPHandler.isMounted(path, mount: configuration.path) else {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                if let origin = head.headers.first(name: "origin"), !cors.allows(origin: origin, host: head.headers.first(name: "host")) {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
            },
            upgradePipelineHandler: { [self] channel, _ in
                let scheduler = self.scheduler(for: channel.eventLoop)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOWebSocketFrameAggregator(
                        minNonFinalFragmentSize: 0,
                        maxAccumulatedFrameCount: 1024,
                        maxAccumulatedFrameSize: broker.configuration.maxBatchBytes
                    ))
                    let raw = RawFrameWriter()
                    try sync.addHandler(raw, position: .first)
                    let handler = WebSocketHandler(broker: broker, configuration: configuration, scheduler: scheduler, logger: logger)
                    handler.rawContext = try sync.context(handler: raw)
                    try sync.addHandler(handler)
                }
            }
        )
        state.withLock { $0.upgrader = $0.upgrader ?? upgrader }
        return upgrader
    }

    private func initializeChild(_ channel: any Channel) -> EventLoopFuture<Void> {
        let key = ObjectIdentifier(channel)
        state.withLock { $0.connections[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.connections.removeValue(forKey: key) }
        }
        let broker = self.broker
        let configuration = self.configuration
        let logger = self.logger
        let upgrader = webSocketUpgrader()
        // The pipeline is configureHTTPServerPipeline's, built by hand so that a fresh
        // upgrade handler can be put back after every plain request: NIO's upgrade handler only
        // looks at the first request of a connection, and aiohttp (aiocometd) sends its
        // WebSocket upgrade on the keep-alive connection it used for the handshake POST.
        let responseEncoder = HTTPResponseEncoder()
        let extraHandlers: [any RemovableChannelHandler] = [
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
            HTTPServerPipelineHandler(),
            NIOHTTPResponseHeadersValidator(),
            HTTPServerProtocolErrorHandler(),
        ]
        let httpHandler = HTTPHandler(broker: broker, configuration: configuration, logger: logger)
        let boundHandler = NIOLoopBound(httpHandler, eventLoop: channel.eventLoop)
        let makeUpgradeHandler = {
            HTTPServerUpgradeHandler(
                upgraders: [upgrader],
                httpEncoder: responseEncoder,
                extraHTTPHandlers: extraHandlers,
                upgradeCompletionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(boundHandler.value, promise: nil)
                }
            )
        }
        httpHandler.makeUpgradeHandler = makeUpgradeHandler
        let boundExtras = NIOLoopBound(extraHandlers, eventLoop: channel.eventLoop)
        let boundMake = NIOLoopBound(makeUpgradeHandler, eventLoop: channel.eventLoop)
        let boundEncoder = NIOLoopBound(responseEncoder, eventLoop: channel.eventLoop)
        return channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(boundEncoder.value)
            for handler in boundExtras.value { try sync.addHandler(handler) }
            try sync.addHandler(boundMake.value())
            try sync.addHandler(boundHandler.value)
        }
    }
}
