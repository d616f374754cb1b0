import DequeModule
public import HeraldProtocol
public import Logging
package import NIOCore
public import Synchronization
import Metrics

/// The Bayeux broker: sessions, subscriptions, routing and `/service` handlers. It knows
/// nothing of sockets; transports hand it decoded batches and implement `SessionSink`.
///
/// Locks (never nested except as noted): `sessions` guards the session table; `index` guards
/// the subscription trie; each `Session` guards its own state and may take `index` while held.
public final class Broker: Sendable {
    public let configuration: BrokerConfiguration
    package let clock: any BrokerClock
    let logger: Logger
    let allocator = ByteBufferAllocator()

    let sessions = Mutex<[String: Session]>([:])
    let index = Mutex(SubscriptionIndex())
    let extensions = Mutex<[any BayeuxExtension]>([])
    let services = Mutex<[(ChannelPattern, ServiceHandler)]>([])
    let logs = Mutex(LogState())
    /// The admin API's sorted channel listing (`sortedChannelNames()`).
    let channelListing = Mutex(ChannelListing())
    /// Sessions holding rate-limited messages back.
    let throttled = Mutex<[ObjectIdentifier: Session]>([:])
    let writer: StoreWriter?
    /// The shared store of a cluster (`ClusterEngine`); nil for a single node.
    let cluster: (any ClusterEngine)?
    /// Committed cluster publishes waiting for this node to apply their offset before they
    /// are acknowledged (`Broker+Cluster.swift`), per channel, in offset order.
    let clusterAcks = Mutex<[ChannelName: Deque<(offset: UInt64, done: @Sendable () -> Void)>]>([:])
    public let counters = BrokerCounters()
    /// Limits that tripped, by limit; the server records its own here too.
    public let limits = LimitCounters()
    /// The room the transport wants around each encoded delivery (`DeliveryFraming`); nil
    /// until a transport asks for some.
    let framing = Mutex<(any DeliveryFraming)?>(nil)
    /// Clients an operator disconnected, remembered for two `maxInterval`s.
    let kicked: Mutex<KickedClients>
    /// Publish to delivery, through swift-metrics: from the publish to the write of the oldest
    /// message in a flush pass, once per pass (`observeDeliveryLatency`).
    let deliveryLatency = Metrics.Timer(label: "herald_delivery_latency_seconds")

    /// - Parameters:
    ///   - store: where persisted channels are written (`persist: true`); nil keeps logs in
    ///     memory only. Ignored with `cluster`.
    ///   - cluster: the shared store that makes this broker one node of several: it assigns
    ///     the offsets of every logged channel and carries messages between nodes.
    public init(
        configuration: BrokerConfiguration = .init(),
        store: (any MessageStore)? = nil,
        cluster: (any ClusterEngine)? = nil,
        clock: any BrokerClock = SystemBrokerClock(),
        logger: Logger = Logger(label: "herald.broker")
    ) {
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.cluster = cluster
        self.writer = cluster == nil ? store.map { StoreWriter(store: $0, logger: logger) } : nil
        self.kicked = Mutex(KickedClients(keepNanoseconds: UInt64(max(configuration.maxIntervalMilliseconds, 1_000)) * 2_000_000))
    }

    // MARK: Embedding API

    /// Adds an extension; it sees messages processed after this call.
    public func addExtension(_ ext: any BayeuxExtension) {
        extensions.withLock { $0.append(ext) }
    }

    /// Registers a handler for `/service/**` channels matching `pattern`. The first matching
    /// registration wins.
    public func registerService(_ pattern: ChannelPattern, handler: @escaping ServiceHandler) {
        services.withLock { $0.append((pattern, handler)) }
    }

    /// Publishes from the server side (no session). `data` must be valid JSON. `/meta/**` and
    /// `/service/**` are refused: they are never broadcast (use `deliver(_:to:)` to answer a
    /// service request privately).
    @discardableResult
    public func publish(_ channel: ChannelName, json data: String) throws -> Int {
        guard !channel.isMeta, !channel.isService else { throw BayeuxError.forbiddenChannel(channel.rawValue) }
        var buffer = allocator.buffer(string: data)
        let valid = buffer.withUnsafeReadableBytes { JSONParser.isValid($0) }
        guard valid else { throw BayeuxError.badRequest("data is not valid JSON") }
        buffer = buffer.slice()
        return publish(Delivery(channel: channel, data: buffer))
    }

    /// Encodes every delivery from now on with `framing`'s room around it. Transports that
    /// share a broker must agree on it; the last call wins.
    package func useDeliveryFraming(_ framing: any DeliveryFraming) {
        self.framing.withLock { $0 = framing }
    }

    /// `delivery`, encoded once for all its subscribers.
    func encode(_ delivery: Delivery) -> ByteBuffer {
        delivery.encoded(allocator: allocator, framing: framing.withLock { $0 })
    }

    public func session(id: String) -> Session? {
        sessions.withLock { $0[id] }
    }

    public var sessionCount: Int { sessions.withLock { $0.count } }
    public var subscriptionCount: Int { index.withLock { $0.subscriptionCount } }

    // MARK: Routing

    /// Encodes `delivery` once and queues the same bytes for every subscriber. Returns the
    /// number of sessions it was queued for (0 on a `durable` channel with a store, which
    /// routes it once it is committed). Publishers never block: a subscriber whose queue
    /// is full is disconnected as a slow consumer.
    @discardableResult
    public func publish(_ delivery: Delivery) -> Int {
        publish(delivery, onCommit: nil).delivered
    }

    struct PublishOutcome {
        var delivered: Int
        /// `onCommit` will run (a `durable` channel with a store).
        var awaitingCommit: Bool
        /// Not published, and why: the store is closing, or the channel would need a log past
        /// `maxLoggedChannels`.
        var refusal: BayeuxError? = nil
        /// Where the message went in its channel's log, if the channel keeps one.
        var position: (offset: UInt64, epoch: String)? = nil
    }

    /// Publishes; for a `durable` channel with a store, `onCommit` runs once the message is
    /// committed and `awaitingCommit` is true.
    func publish(_ delivery: Delivery, onCommit: StoreWriter.Completion?) -> PublishOutcome {
        var delivery = delivery
        for ext in extensions.withLock({ $0 }) { ext.outgoingDelivery(&delivery) }
        let options = logsChannels ? configuration.channels.options(for: delivery.channel) : nil
        if let options, options.isLogged {
            if cluster != nil { return publishClustered(delivery, options: options, onCommit: onCommit) }
            return publishLogged(delivery, options: options, onCommit: onCommit)
        }
        cluster?.broadcast(delivery)
        return PublishOutcome(delivered: route(delivery, options: options), awaitingCommit: false)
    }

    /// Whether a publish to `channel` is acknowledged only once committed: a `durable`
    /// channel with a store, and every channel with a log in a cluster (its offset comes from
    /// the shared store).
    func acknowledgesAfterCommit(_ channel: ChannelName) -> Bool {
        guard logsChannels, let options = configuration.channels.options(for: channel) else { return false }
        if cluster != nil { return options.isLogged }
        return writer != nil && options.durable
    }

    /// Queues `delivery`, encoded once, for every subscriber of its channel, under the
    /// channel's slow-consumer policy and rate limit. `publishedHere` is false for a message
    /// another node of a cluster published: the `published` counter counts each message
    /// once across the nodes.
    func route(_ delivery: Delivery, options: ChannelPolicy?, publishedHere: Bool = true) -> Int {
        let subscribers = index.withLock { $0.match(delivery.channel) }
        if publishedHere { counters.published.add(1, ordering: .relaxed) }
        guard !subscribers.isEmpty else { return 0 }
        let encoded = encode(delivery)
        let policy = DeliveryPolicy(channel: delivery.channel, options: options)
        let now = clock.nowNanoseconds()
        let maxPending = configuration.maxPendingBytesPerSession
        var delivered = 0
        var dropped = 0
        var slow: [Session] = []
        for session in subscribers {
            switch session.enqueue(encoded, policy: policy, maxPendingBytes: maxPending, now: now) {
            case .queued(let d):
                delivered += 1
                dropped += d
            case .notify(let sink, let d):
                delivered += 1
                dropped += d
                sink.messagesAvailable(session)
            case .throttled(let register):
                if register { throttled.withLock { $0[ObjectIdentifier(session)] = session } }
            case .overflow: slow.append(session)
            case .closed: break
            }
        }
        counters.delivered.add(delivered, ordering: .relaxed)
        if dropped > 0 { counters.dropped.add(dropped, ordering: .relaxed) }
        for session in slow {
            counters.slowConsumers.add(1, ordering: .relaxed)
            logger.warning("slow consumer disconnected", metadata: ["session.id": "\(session.id)", "channel.name": "\(delivery.channel)"])
            removeSession(session, reason: .slowConsumer)
        }
        return delivered
    }

    /// Delivers a message to one session only (private `/service` replies).
    public func deliver(_ delivery: Delivery, to session: Session) {
        let policy = DeliveryPolicy(channel: delivery.channel, options: nil)
        switch session.enqueue(encode(delivery), policy: policy, maxPendingBytes: configuration.maxPendingBytesPerSession, now: clock.nowNanoseconds()) {
        case .notify(let sink, _): sink.messagesAvailable(session)
        case .overflow: removeSession(session, reason: .slowConsumer)
        case .queued, .closed, .throttled: break
        }
    }

    /// Sends the rate-limited messages whose time has come. Called by `BrokerService` every
    /// `throttleTickMilliseconds`.
    package func releaseThrottled() {
        let now = clock.nowNanoseconds()
        let waiting = throttled.withLock { Array($0.values) }
        for session in waiting {
            var result: (notify: (any SessionSink)?, overflow: Bool, remaining: Bool) = (nil, false, true)
            // Under the broker's lock so that a concurrent publish re-registers after, not before,
            // the session is forgotten (lock order: `throttled`, then the session).
            throttled.withLock { table in
                result = session.releaseThrottled(now: now, maxPendingBytes: configuration.maxPendingBytesPerSession)
                if !result.remaining { table[ObjectIdentifier(session)] = nil }
            }
            result.notify?.messagesAvailable(session)
            if result.overflow { removeSession(session, reason: .slowConsumer) }
        }
    }

    // MARK: Session lifecycle

    /// A transport wrote messages, the oldest of them published at `since` (monotonic ns, as
    /// `Session.drain` gives it; 0 is ignored).
    package func observeDeliveryLatency(since: UInt64) {
        guard since > 0 else { return }
        let now = clock.nowNanoseconds()
        if now > since { deliveryLatency.recordNanoseconds(Int64(now - since)) }
    }

    func expiry(_ now: UInt64) -> UInt64 {
        now &+ UInt64(configuration.maxIntervalMilliseconds) * 1_000_000
    }

    /// Ends a session: unsubscribes it, answers its held connect, and tells its connection.
    package func removeSession(_ session: Session, reason: CloseReason) {
        let removed = sessions.withLock { $0.removeValue(forKey: session.id) != nil }
        guard let (patterns, held, sink) = session.close() else { return }
        if !patterns.isEmpty {
            index.withLock { idx in
                for pattern in patterns { idx.remove(pattern, session) }
            }
        }
        if removed { counters.sessionsClosed.add(1, ordering: .relaxed) }
        if reason.code == 4002 {
            let now = clock.nowNanoseconds()
            kicked.withLock { $0.insert(session.id, reason: reason.name, now: now) }
        }
        if let held {
            let advice: Advice
            switch reason {
            case .clientDisconnected: advice = .none
            case _ where reason.code == 4002: advice = .none
            case .goingAway: advice = Advice(reconnect: .retry, intervalMilliseconds: 0, timeoutMilliseconds: configuration.connectTimeoutMilliseconds)
            default: advice = .handshake
            }
            let reply = connectReply(held.request, session: session, advice: advice, error: reason == .clientDisconnected || reason == .goingAway ? nil : BayeuxError(code: 402, args: [reason.name], message: "Unknown client"))
            held.responder.completeConnect(session, reply: reply, events: [])
        }
        if let sink, reason != .clientDisconnected {
            sink.sessionClosed(session, reason: reason)
        }
        logger.debug("session closed", metadata: ["session.id": "\(session.id)", "reason": "\(reason)"])
    }

    /// Drops sessions whose `maxInterval` has passed. Called by `BrokerService` on a timer.
    @discardableResult
    package func expireSessions() -> Int {
        let now = clock.nowNanoseconds()
        expireLogs()
        let expired = sessions.withLock { table in table.values.filter { $0.isExpired(now: now) } }
        for session in expired { removeSession(session, reason: .expired) }
        if !expired.isEmpty { counters.sessionsExpired.add(expired.count, ordering: .relaxed) }
        if configuration.requiresAuthentication {
            let wall = clock.nowMillisecondsSince1970()
            let lapsed = sessions.withLock { table in table.values.filter { $0.tokenExpired(nowMilliseconds: wall) } }
            for session in lapsed { removeSession(session, reason: .tokenExpired) }
        }
        return expired.count
    }

    /// The connection went away; keep the session (the client may come back on another
    /// connection) but stop routing to it.
    package func detach(_ connection: AnyObject, from session: Session) {
        session.detach(connection, expiresAt: expiry(clock.nowNanoseconds()))
    }

    /// Ends a held connect when its timeout fires. Does nothing if it already ended.
    package func timeoutHeldConnect(_ held: HeldConnect) {
        completeHeldConnect(session: held.session, token: held.token)
    }

    /// Answers the connect `responder` holds because events arrived for it. Does nothing if that
    /// connect already ended (a later connect of the session may be held by someone else).
    package func releaseHeldConnect(for session: Session, heldBy responder: any HeldConnectResponder) {
        completeHeldConnect(session: session, token: nil, responder: responder)
    }

    func completeHeldConnect(session: Session, token: UInt64?, responder: (any HeldConnectResponder)? = nil) {
        guard let (held, events) = session.endHeld(token: token, responder: responder, expiresAt: expiry(clock.nowNanoseconds())) else { return }
        let reply = connectReply(held.request, session: session, advice: retryAdvice, error: nil)
        held.responder.completeConnect(session, reply: reply, events: events)
    }

    /// Ends every session's held connect with `reconnect: retry` and tells every connection
    /// that the server is going away. Used on graceful shutdown.
    package func shutdown() {
        let all = sessions.withLock { Array($0.values) }
        for session in all { removeSession(session, reason: .goingAway) }
    }

    var retryAdvice: Advice {
        Advice(reconnect: .retry, intervalMilliseconds: 0, timeoutMilliseconds: configuration.connectTimeoutMilliseconds)
    }
}

/// A `/meta/connect` the transport must answer later: when `timeout` passes (call
/// `Broker.timeoutHeldConnect`) or earlier, through its `HeldConnectResponder`.
package struct HeldConnect: Sendable {
    package let session: Session
    package let token: UInt64
    package let timeout: TimeAmount
}

/// Monotonic counters, read by the admin API and metrics.
public final class BrokerCounters: Sendable {
    public let published = Atomic<Int>(0)
    public let delivered = Atomic<Int>(0)
    public let sessionsOpened = Atomic<Int>(0)
    public let sessionsClosed = Atomic<Int>(0)
    public let sessionsExpired = Atomic<Int>(0)
    public let slowConsumers = Atomic<Int>(0)
    /// Messages dropped by `dropOldest` or replaced by `conflate`.
    public let dropped = Atomic<Int>(0)
    public let errors = Atomic<Int>(0)
}
