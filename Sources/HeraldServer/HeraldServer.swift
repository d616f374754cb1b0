public import HeraldCore
public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL
public import ServiceLifecycle
import Synchronization

/// The data-plane listener: one port serving WebSocket upgrades, long-polling and
/// callback-polling at `configuration.path`.
///
/// As a `Service` it binds on `run()`, serves until graceful shutdown, then quiesces as
/// Hummingbird's server does: it stops accepting, asks every connection to finish (held
/// connects are answered with `reconnect: retry`, WebSockets closed with 1001, HTTP
/// connections closed after the response in progress), and returns once all are closed.
/// The broker's sessions and store are `BrokerService`'s to shut down, after this.
public final class HeraldServer: Service, Sendable {
    public let broker: Broker
    public let configuration: ServerConfiguration
    let group: any EventLoopGroup
    let logger: Logger
    let state = Mutex<State>(State())
    let onListening: (@Sendable (SocketAddress) -> Void)?
    /// Built once: every connection checks origins against it.
    let cors: CORSPolicy
    /// Handshake rate limits, per connection and per IP address.
    let handshakes: HandshakeLimiter
    /// Whose `X-Forwarded-For` to believe.
    let proxies: TrustedProxies

    struct State {
        var serverChannel: (any Channel)?
        /// Made at `start()` from `configuration.tls`: every connection's TLS handler uses it.
        var tlsContext: NIOSSLContext?
        var connections: [ObjectIdentifier: any Channel] = [:]
        /// Open connections by remote IP address, for `maxConnectionsPerIP` (only addresses
        /// that limit applies to).
        var connectionsByIP: [String: Int] = [:]
        var loops: [ObjectIdentifier: LoopServices] = [:]
        /// `shutdown()` has begun: new connections are closed as they come.
        var quiescing = false
        /// Waiting for `connections` to become empty, by waiter.
        var drainWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
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
        self.cors = CORSPolicy(allowedOrigins: configuration.allowedOrigins)
        self.handshakes = HandshakeLimiter(configuration: configuration)
        self.proxies = TrustedProxies(configuration.trustedProxies) { entry in
            logger.error("ignoring trustedProxies: not an IP address or CIDR range", metadata: ["entry": "\(entry)"])
        } ?? TrustedProxies([])!
        // Deliveries are encoded with room for the WebSocket frame that sends one alone.
        broker.useDeliveryFraming(SingleMessageFrame.Framing())
    }

    /// The bound address, once started.
    public var localAddress: SocketAddress? {
        state.withLock { $0.serverChannel?.localAddress }
    }

    public var port: Int? { localAddress?.port }

    public var connectionCount: Int { state.withLock { $0.connections.count } }

    /// Open connections by transport: `websocket`, and `http` (long-polling, callback-polling
    /// and requests that are neither); a connection that has not sent its first request yet
    /// is in neither. O(1), for `/v1/stats`.
    public var connectionsByTransport: [String: Int] {
        ["websocket": webSocketConnections.load(ordering: .relaxed), "http": httpConnections.load(ordering: .relaxed)]
    }
    let webSocketConnections = Atomic<Int>(0)
    /// Bytes received and sent on the data plane.
    public let traffic = TrafficCounters()
    let httpConnections = Atomic<Int>(0)

    /// Bytes written to connections and not yet taken by the kernel, over all connections:
    /// what clients that read slowly or not at all make the server hold, besides session
    /// queues. It asks every connection's event loop, so it costs O(connections).
    public func bufferedOutboundBytes() async -> Int {
        let channels = state.withLock { Array($0.connections.values) }
        var total = 0
        for channel in channels {
            total += (try? await channel.getOption(.bufferedWritableBytes).get()) ?? 0
        }
        return total
    }

    /// Whether the listener is bound and not shutting down.
    public var isServing: Bool { state.withLock { $0.serverChannel != nil && !$0.quiescing } }

    public func run() async throws {
        let address = try await start()
        onListening?(address)
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Binds and starts accepting. Returns the bound address.
    @discardableResult
    public func start() async throws -> SocketAddress {
        if let tls = configuration.tls {
            let context = try NIOSSLContext(configuration: tls.serverConfiguration())
            state.withLock { $0.tlsContext = context }
        }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Accepted sockets inherit TCP_NODELAY from the listener on Linux, which saves a
            // setsockopt per connection; elsewhere `initializeChild` sets it.
            .serverChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                self.initializeChild(channel)
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLock { $0.serverChannel = channel }
        logger.info("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "path": "\(configuration.path)"])
        return channel.localAddress!
    }

    /// Stops accepting and closes every connection as a graceful shutdown does (see the type's
    /// summary). Returns once all are closed; connections still open after
    /// `shutdownTimeoutSeconds` are closed outright.
    public func shutdown() async {
        let (first, server) = state.withLock { s -> (Bool, (any Channel)?) in
            defer {
                s.quiescing = true
                s.serverChannel = nil
            }
            return (!s.quiescing, s.serverChannel)
        }
        guard first else {
            // Shutting down already: wait for that to finish.
            await connectionsClosed()
            return
        }
        try? await server?.close()
        let loops = state.withLock { Array($0.loops.values) }
        for loop in loops {
            try? await loop.flush.eventLoop.submit {
                loop.requests.quiesce()
                loop.keepalive.quiesce()
            }.get()
        }
        let timeout = configuration.shutdownTimeoutSeconds
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.connectionsClosed() }
            group.addTask { try? await Task.sleep(for: .seconds(timeout)) }
            await group.next()
            group.cancelAll()
        }
        let open = state.withLock { Array($0.connections.values) }
        if !open.isEmpty {
            logger.warning("closing connections that did not finish in time", metadata: ["connections": "\(open.count)", "timeout.seconds": "\(timeout)"])
        }
        for channel in open { try? await channel.close() }
    }

    /// Returns once no connection is open, or when cancelled.
    private func connectionsClosed() async {
        let waiter = state.withLock { s -> Int in
            defer { s.nextWaiter += 1 }
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = state.withLock { s -> Bool in
                    if s.connections.isEmpty || Task.isCancelled { return true }
                    s.drainWaiters[waiter] = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.drainWaiters.removeValue(forKey: waiter) }?.resume()
        }
    }

    /// What the connections of one event loop share.
    struct LoopServices {
        let flush: FlushScheduler
        /// WebSocket pings, every `webSocketPingIntervalSeconds`.
        let keepalive: ConnectionTicker
        /// HTTP request timeouts, checked every half timeout.
        let requests: ConnectionTicker
        /// Write stalls (`ConnectionGuard`), checked every half stall timeout.
        let stalls: ConnectionTicker
    }

    var requestTimeout: TimeAmount { .seconds(Int64(max(1, configuration.requestTimeoutSeconds))) }
    var stallTimeout: TimeAmount { .seconds(Int64(max(1, configuration.writeStallTimeoutSeconds))) }

    /// The services shared by the connections of `loop`.
    private func services(for loop: any EventLoop) -> LoopServices {
        state.withLock { s in
            let key = ObjectIdentifier(loop)
            if let existing = s.loops[key] { return existing }
            let created = LoopServices(
                flush: FlushScheduler(eventLoop: loop, traffic: traffic, broker: broker),
                keepalive: ConnectionTicker(eventLoop: loop, interval: .seconds(Int64(max(1, configuration.webSocketPingIntervalSeconds)))),
                requests: ConnectionTicker(eventLoop: loop, interval: .milliseconds(requestTimeout.nanoseconds / 2_000_000)),
                stalls: ConnectionTicker(eventLoop: loop, interval: .milliseconds(stallTimeout.nanoseconds / 2_000_000))
            )
            s.loops[key] = created
            return created
        }
    }

    /// Adds the handler of an upgraded connection, `WebSocketHandler`, which reads and writes
    /// frames itself (`WebSocketFrameReader`, `prependWebSocketHeader`), and returns it.
    private func installWebSocket(on context: ChannelHandlerContext, headers: HTTPHeaders) throws -> WebSocketHandler {
        let loop = services(for: context.eventLoop)
        let client = proxies.client(of: context.channel.remoteAddress, forwardedFor: headers[canonicalForm: "x-forwarded-for"].map(String.init))
        let handler = WebSocketHandler(broker: broker, configuration: configuration, scheduler: loop.flush, keepalive: loop.keepalive, traffic: traffic, handshakes: handshakes, clientAddress: client, logger: logger)
        handler.upgradeBearer = TokenVerifier.bearer(headers)
        if configuration.tokenVerifier != nil {
            // Sessions are bound to their client (`SessionBinding`): by this connection, and by
            // the browser cookie, which the `101` sets when the upgrade brought none.
            handler.proof.browser = BrowserCookie.find(in: headers[canonicalForm: "cookie"].map(String.init))
            if handler.proof.browser == nil {
                handler.newBrowserCookie = BrowserCookie.generate()
                handler.proof.browser = handler.newBrowserCookie
            }
        }
        try context.pipeline.syncOperations.addHandler(handler, name: "bayeux-ws")
        webSocketConnections.add(1, ordering: .relaxed)
        context.channel.closeFuture.whenComplete { [self] _ in webSocketConnections.subtract(1, ordering: .relaxed) }
        return handler
    }

    /// Why a new connection is refused, if it is.
    private enum Admission { case accepted, quiescing, refused(Limit) }

    private func initializeChild(_ channel: any Channel) -> EventLoopFuture<Void> {
        let key = ObjectIdentifier(channel)
        // The per-IP limit, like the handshake rate, spares loopback unless asked: a proxy on
        // the same host puts every client behind one address.
        // A trusted proxy is exempt: every client behind it shares its address.
        let ip: String? = configuration.maxConnectionsPerIP > 0
            ? channel.remoteAddress.flatMap { address in
                (configuration.rateLimitLoopback || !HandshakeLimiter.isLoopback(address)) && !proxies.contains(address) ? HandshakeLimiter.addressKey(address) : nil
            }
            : nil
        var tls: NIOSSLContext?
        let admission = state.withLock { s -> Admission in
            guard !s.quiescing else { return .quiescing }
            tls = s.tlsContext
            if configuration.maxConnections > 0, s.connections.count >= configuration.maxConnections {
                return .refused(.connections)
            }
            if let ip {
                let open = s.connectionsByIP[ip, default: 0]
                guard open < configuration.maxConnectionsPerIP else { return .refused(.connectionsPerIP) }
                s.connectionsByIP[ip] = open + 1
            }
            s.connections[key] = channel
            return .accepted
        }
        switch admission {
        case .accepted:
            break
        case .quiescing:
            // Accepted just before the listener closed: the server is going away.
            return channel.close()
        case .refused(let limit):
            // Nothing is read from it, so there is no protocol to answer in: closed at once,
            // as nats-server and mosquitto do past their connection limits.
            let count = broker.limits.record(limit)
            if count == 1 || count % 10_000 == 0 {
                logger.warning("refusing connections", metadata: ["limit": "\(limit.rawValue)", "refused": "\(count)"])
            }
            return channel.close()
        }
        channel.closeFuture.whenComplete { [self] _ in
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.connections.removeValue(forKey: key)
                if let ip {
                    let open = s.connectionsByIP[ip, default: 1] - 1
                    s.connectionsByIP[ip] = open > 0 ? open : nil
                }
                guard s.connections.isEmpty else { return [] }
                defer { s.drainWaiters = [:] }
                return Array(s.drainWaiters.values)
            }
            for waiter in waiters { waiter.resume() }
        }
        let watermark = ChannelOptions.Types.WriteBufferWaterMark(low: configuration.writeBufferLowWaterMarkBytes, high: configuration.writeBufferHighWaterMarkBytes)
        return channel.eventLoop.makeCompletedFuture { [self] in
            // Set here, synchronously: bootstrap child options cost a future chain per connection.
            if let options = channel.syncOptions {
                try options.setOption(.writeBufferWaterMark, value: watermark)
                try options.setOption(.maxMessagesPerRead, value: 16)
                // Bayeux frames from subscribers are small; start reads at 1 KiB rather than NIO's
                // 2 KiB default (it grows for publishers) to keep idle connections cheap.
                try options.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 1024, maximum: 256 * 1024))
                #if !os(Linux)
                try options.setOption(.tcpOption(.tcp_nodelay), value: 1)
                #endif
            }
            let loop = services(for: channel.eventLoop)
            // TLS, when configured, is closest to the socket: everything after it, the guard
            // included, sees plaintext.
            if let tls {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), name: "tls")
            }
            // First after TLS, for the connection's whole life: stops reading from a client that does
            // not read what it is sent, and closes it past a limit.
            try channel.pipeline.syncOperations.addHandler(ConnectionGuard(
                maxOutboundBytes: configuration.maxOutboundBufferBytes,
                stallTimeout: stallTimeout,
                ticker: loop.stalls,
                limits: broker.limits,
                logger: logger
            ), name: "connection-guard")
            // The HTTP pipeline is built only for connections that need it (see `UpgradeSniffer`).
            try channel.pipeline.syncOperations.addHandler(UpgradeSniffer(
                mountPath: configuration.path,
                cors: cors,
                deadline: RequestDeadline(timeout: requestTimeout),
                ticker: loop.requests,
                installWebSocket: { [unowned self] context, headers in try self.installWebSocket(on: context, headers: headers) },
                installHTTP: { [unowned self] context, deadline in try self.installHTTP(on: context, deadline: deadline) }
            ), name: "upgrade-sniffer")
        }
    }

    /// configureHTTPServerPipeline's handlers, less the upgrade handler, at the end of the
    /// pipeline: `HTTPHandler` does the WebSocket handshake itself on any request of a
    /// keep-alive connection (aiohttp, under aiocometd, upgrades on the connection of its
    /// handshake POST; NIO's upgrade handler only looks at the first request).
    private func installHTTP(on context: ChannelHandlerContext, deadline: RequestDeadline) throws {
        let sync = context.pipeline.syncOperations
        // Long-polling requests are small: reads of at most 16 KiB, so that one read of tiny
        // pipelined requests from a client that never reads its responses is a few hundred
        // requests, not thousands, before the guard can hold the rest (a WebSocket upgrade
        // goes back to the full 256 KiB, for publishers).
        try context.channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 1024, maximum: 16 * 1024))
        let http = HTTPHandler(broker: broker, configuration: configuration, cors: cors, deadline: deadline, ticker: services(for: context.eventLoop).requests, traffic: traffic, handshakes: handshakes, proxies: proxies, logger: logger)
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let pipelining = HTTPServerPipelineHandler()
        let errors = HTTPServerProtocolErrorHandler()
        try sync.addHandler(encoder, name: "http-encoder")
        try sync.addHandler(decoder, name: "http-decoder")
        try sync.addHandler(pipelining, name: "http-pipelining")
        try sync.addHandler(errors, name: "http-errors")
        try sync.addHandler(http, name: "bayeux-http")
        http.httpHandlers = [encoder, pipelining, errors, decoder]
        // Counted as HTTP until it upgrades, then as a WebSocket.
        let upgraded = NIOLoopBoundBox(false, eventLoop: context.eventLoop)
        httpConnections.add(1, ordering: .relaxed)
        context.channel.closeFuture.whenComplete { [self] _ in
            if !upgraded.value { httpConnections.subtract(1, ordering: .relaxed) }
        }
        http.installWebSocket = { [unowned self] context, headers in
            upgraded.value = true
            try context.channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 1024, maximum: 256 * 1024))
            httpConnections.subtract(1, ordering: .relaxed)
            return try self.installWebSocket(on: context, headers: headers)
        }
    }
}
