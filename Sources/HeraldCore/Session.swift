package import DequeModule
public import HeraldProtocol
package import NIOCore
package import Synchronization

/// One Bayeux client session, from handshake to disconnect or expiry.
///
/// A session outlives connections: a client may handshake over HTTP, connect over WebSocket,
/// lose the socket and come back on a new one with the same clientId. Messages for it wait in
/// a queue bounded by `maxPendingBytesPerSession` until a connection drains them.
///
/// Locking: all mutable state is behind `state`. The session lock may be taken before the
/// broker's index lock (subscribe), never after it; no other lock is taken while it is held.
public final class Session: Sendable {
    public let id: String
    /// `ext.replay` from the handshake: channel → position, used by the first successful
    /// subscribe to each channel (see `handshakeReplayPosition(for:)`).
    let replayPositions: JSONObject?
    /// Whom the session belongs to, when tokens are required: what later requests must show.
    package let binding: SessionBinding?
    let state: Mutex<State>

    struct Held {
        var token: UInt64
        /// The `/meta/connect` being held, for outgoing extensions when it is answered.
        var request: BayeuxMessage
        var id: JSONValue? { request.id }
        var responder: any HeldConnectResponder
        /// HTTP transports send queued events with the connect reply and end the hold when
        /// events arrive; WebSocket pushes events separately.
        var carriesEvents: Bool
    }

    struct Throttled {
        var message: ByteBuffer
        var interval: UInt64
        var policy: DeliveryPolicy
    }

    struct State {
        var subscriptions: [String: ChannelPattern] = [:]
        var queue = Deque<ByteBuffer>()
        var queuedBytes = 0
        /// Conflating channels: channel → logical position of its pending message in `queue`
        /// (physical index + `removedFromFront`).
        var conflated = ConflationIndex()
        var removedFromFront = 0
        /// The connection could not take more at its last flush: conflating channels replace
        /// their pending message instead of queueing another.
        var congested = false
        /// Per-subscription rate limits (`ext.herald.maxFrequency` on subscribe), by pattern.
        var throttles: [String: (pattern: ChannelPattern, interval: UInt64)] = [:]
        /// When each rate-limited channel was last delivered, and its newest held-back message.
        /// Entries whose interval has passed act as if absent, and are pruned when the table
        /// doubles (`rememberSent`), so that rate-limited deliveries over ever new channel names
        /// do not grow it without bound.
        var lastSent: [String: (at: UInt64, interval: UInt64)] = [:]
        var lastSentPruneAt = 1024
        var throttled: [String: Throttled] = [:]
        /// Bytes of the messages in `throttled`; they count toward `maxPendingBytes` with the
        /// queue, so held-back messages over ever new channel names are bounded too.
        var throttledBytes = 0
        /// Messages replaced (conflate) or dropped (dropOldest) for this session.
        var dropped = 0
        /// Where its last `/meta/connect` came from.
        var remoteAddress: SocketAddress?
        /// When the oldest live message in `queue` was published (monotonic ns; 0: unknown).
        var queuedSince: UInt64 = 0
        var throttleRegistered = false
        /// The sink has been told about pending messages and has not drained them yet.
        var notified = false
        var sink: (any SessionSink)?
        var held: Held?
        var holdCounter: UInt64 = 0
        var hasConnected = false
        var expiresAtNanoseconds: UInt64
        var closed = false
        var connectionType: ConnectionType?
        /// Channels whose handshake replay position a subscribe has used.
        var usedReplayPositions: Set<String> = []
        /// Publish tokens left (`maxPublishesPerSecondPerSession`), and when they were counted.
        var publishTokens: Double = -1
        var publishTokensAt: UInt64 = 0
        var identity: ClientIdentity?

        /// Holds `entry` back for `channel` (nil: forgets what was held), keeping `throttledBytes`.
        mutating func hold(_ entry: Throttled?, for channel: String) {
            let previous = entry == nil ? throttled.removeValue(forKey: channel) : throttled.updateValue(entry!, forKey: channel)
            throttledBytes += (entry?.message.readableBytes ?? 0) - (previous?.message.readableBytes ?? 0)
        }

        /// Records a rate-limited delivery on `channel`.
        mutating func rememberSent(_ channel: String, at now: UInt64, interval: UInt64) {
            lastSent[channel] = (now, interval)
            guard lastSent.count >= lastSentPruneAt else { return }
            let held = throttled
            lastSent = lastSent.filter { now &- $0.value.at < $0.value.interval || held[$0.key] != nil }
            lastSentPruneAt = max(1024, 2 * lastSent.count)
        }

        /// Empties the queue (it was drained or dropped).
        mutating func resetQueue() {
            queue.removeAll(keepingCapacity: queue.count <= 64)
            queuedBytes = 0
            if !conflated.isEmpty { conflated.removeAll() }
            removedFromFront = 0
            congested = false
        }

        /// Queues `message` under `policy`, applying the slow-consumer policy at `maxPendingBytes`.
        mutating func append(_ message: ByteBuffer, policy: DeliveryPolicy, maxPendingBytes: Int) -> EnqueueResult {
            let size = message.readableBytes
            let conflating = policy.slowConsumer == .conflate
            if conflating, congested || queuedBytes + size > maxPendingBytes,
                let logical = conflated[policy.channel], logical >= removedFromFront
            {
                let index = logical - removedFromFront
                queuedBytes += size - queue[index].readableBytes
                queue[index] = message
                self.dropped += 1
                return notifyResult(dropped: 1)
            }
            var dropped = 0
            if queuedBytes + size > maxPendingBytes {
                switch policy.slowConsumer {
                case .disconnect:
                    return .overflow
                case .dropOldest:
                    while queuedBytes + size > maxPendingBytes, let first = queue.first {
                        queue.removeFirst()
                        queuedBytes -= first.readableBytes
                        removedFromFront += 1
                        dropped += 1
                    }
                case .conflate:
                    // One pending message per channel: bounded by the number of channels;
                    // past four times the limit, even that is too much.
                    if queuedBytes + size > 4 * maxPendingBytes { return .overflow }
                }
            }
            if conflating { conflated[policy.channel] = removedFromFront + queue.count }
            queue.append(message)
            queuedBytes += size
            self.dropped += dropped
            return notifyResult(dropped: dropped)
        }

        mutating func notifyResult(dropped: Int) -> EnqueueResult {
            if !notified, let sink {
                notified = true
                return .notify(sink, dropped: dropped)
            }
            return .queued(dropped: dropped)
        }
    }

    /// Who handshook, when the broker requires a token (refreshed by a connect's token).
    public var identity: ClientIdentity? { state.withLock { $0.identity } }

    /// Takes a fresh token's identity if it names the same subject; false otherwise.
    func refresh(_ fresh: ClientIdentity) -> Bool {
        state.withLock { s in
            guard let current = s.identity, current.subject == fresh.subject else { return false }
            s.identity = fresh
            return true
        }
    }

    /// Whether the token the session was opened (or last refreshed) with has expired.
    func tokenExpired(nowMilliseconds: Int64) -> Bool {
        state.withLock { $0.identity?.expiresAtMilliseconds.map { $0 <= nowMilliseconds } ?? false }
    }

    init(id: String, expiresAtNanoseconds: UInt64, replayPositions: JSONObject? = nil, identity: ClientIdentity? = nil, binding: SessionBinding? = nil) {
        self.id = id
        self.replayPositions = replayPositions
        self.binding = binding
        self.state = Mutex(State(expiresAtNanoseconds: expiresAtNanoseconds, identity: identity))
    }

    /// Subscription patterns, sorted.
    public var subscriptions: [String] {
        state.withLock { $0.subscriptions.keys.sorted() }
    }

    public var pendingBytes: Int { state.withLock { $0.queuedBytes } }
    /// Channels whose last rate-limited delivery this session remembers (`maxFrequency`).
    public var rateLimitedChannelCount: Int { state.withLock { $0.lastSent.count } }
    /// Whether a `/meta/connect` of this session is being held.
    public var isHoldingConnect: Bool { state.withLock { $0.held != nil } }
    public var isClosed: Bool { state.withLock { $0.closed } }
    public var connectionType: ConnectionType? { state.withLock { $0.connectionType } }
    /// Messages replaced (conflate) or dropped (dropOldest) because this client was slow.
    public var droppedMessages: Int { state.withLock { $0.dropped } }
    /// Where the client's last `/meta/connect` came from, if the transport knows.
    package var remoteAddress: SocketAddress? { state.withLock { $0.remoteAddress } }

    // MARK: Delivery

    enum EnqueueResult {
        case queued(dropped: Int)
        case notify(any SessionSink, dropped: Int)
        case overflow
        case closed
        /// Held back by a rate limit; `register` asks the broker to release it later.
        case throttled(register: Bool)
    }

    /// Appends an encoded message. The caller notifies the returned sink outside the lock.
    func enqueue(_ message: ByteBuffer, policy: DeliveryPolicy, maxPendingBytes: Int, now: UInt64) -> EnqueueResult {
        state.withLock { s in
            if s.closed { return .closed }
            var interval = policy.minimumIntervalNanoseconds
            if !s.throttles.isEmpty {
                for throttle in s.throttles.values where throttle.interval > interval && throttle.pattern.matches(policy.channelName) {
                    interval = throttle.interval
                }
            }
            if interval > 0 {
                if let last = s.lastSent[policy.channel]?.at, now &- last < interval {
                    let replaced = s.throttled[policy.channel]?.message.readableBytes ?? 0
                    let limit = policy.slowConsumer == .conflate ? 4 * maxPendingBytes : maxPendingBytes
                    if s.queuedBytes + s.throttledBytes - replaced + message.readableBytes > limit { return .overflow }
                    s.hold(Throttled(message: message, interval: interval, policy: policy), for: policy.channel)
                    if s.throttleRegistered { return .throttled(register: false) }
                    s.throttleRegistered = true
                    return .throttled(register: true)
                }
                if s.throttled[policy.channel] != nil { s.hold(nil, for: policy.channel) }
                s.rememberSent(policy.channel, at: now, interval: interval)
            }
            if s.queue.isEmpty { s.queuedSince = now }
            return s.append(message, policy: policy, maxPendingBytes: maxPendingBytes)
        }
    }

    /// Queues held-back messages whose interval has passed. Returns the sink to notify, and
    /// whether the session still holds messages back (false: the broker forgets it).
    func releaseThrottled(now: UInt64, maxPendingBytes: Int) -> (notify: (any SessionSink)?, overflow: Bool, remaining: Bool) {
        state.withLock { s in
            var notify: (any SessionSink)?
            var overflow = false
            for (channel, held) in s.throttled where now &- (s.lastSent[channel]?.at ?? 0) >= held.interval {
                s.hold(nil, for: channel)
                s.rememberSent(channel, at: now, interval: held.interval)
                if s.queue.isEmpty { s.queuedSince = now }
                switch s.append(held.message, policy: held.policy, maxPendingBytes: maxPendingBytes) {
                case .notify(let sink, _): notify = sink
                case .overflow: overflow = true
                default: break
                }
            }
            if s.throttled.isEmpty { s.throttleRegistered = false }
            return (notify, overflow, !s.throttled.isEmpty)
        }
    }

    /// The connection could not take more: conflating channels now keep one message each.
    package func markCongested() {
        state.withLock { $0.congested = true }
    }

    func setThrottle(_ pattern: ChannelPattern, interval: UInt64?) {
        state.withLock { s in
            if let interval { s.throttles[pattern.rawValue] = (pattern, interval) } else { s.throttles[pattern.rawValue] = nil }
        }
    }

    /// Queues retained or replayed messages for a new subscription. They are bounded by the
    /// channels' history sizes, not by `maxPendingBytesPerSession`.
    func enqueueCatchUp(_ messages: [ByteBuffer]) -> (any SessionSink)? {
        state.withLock { s in
            if s.closed || messages.isEmpty { return nil }
            // Not counted in `queuedBytes`: catch-up is bounded by the channels' history
            // sizes, and counting it would cut the subscriber off at its next live message.
            s.queue.append(contentsOf: messages)
            if !s.notified, let sink = s.sink {
                s.notified = true
                return sink
            }
            return nil
        }
    }

    /// Takes every queued message, if `sink` is still this session's sink, and hands them to
    /// `body` under the lock (so it can copy them into one frame without another allocation),
    /// with the time the oldest was published (monotonic ns, 0 if unknown: catch-up).
    /// Returns the number of messages drained.
    @discardableResult
    package func drain(for sink: any SessionSink, _ body: (_ queue: inout Deque<ByteBuffer>, _ bytes: Int, _ queuedSince: UInt64) -> Void) -> Int {
        state.withLock { s in
            guard let current = s.sink, current === sink else { return 0 }
            s.notified = false
            let count = s.queue.count
            if count > 0 {
                body(&s.queue, s.queuedBytes, s.queuedSince)
                s.queuedSince = 0
                s.resetQueue()
            }
            return count
        }
    }

    // MARK: Connect

    enum ConnectDecision {
        /// Reply now; `events` go into the same HTTP response; `notify` must be told.
        case immediate(events: [ByteBuffer], notify: (any SessionSink)?)
        case held(token: UInt64, notify: (any SessionSink)?)
    }

    /// Starts a `/meta/connect`. `superseded` receives an older held connect, which the
    /// caller must answer.
    func beginConnect(
        request: BayeuxMessage,
        type: ConnectionType,
        connection: (any BayeuxConnection)?,
        mayHold: Bool,
        expiresAt: UInt64,
        superseded: inout Held?
    ) -> ConnectDecision {
        state.withLock { s in
            superseded = s.held
            s.held = nil
            s.connectionType = type
            if let address = connection?.remoteAddress { s.remoteAddress = address }
            let first = !s.hasConnected
            s.hasConnected = true
            let pushes = type == .websocket
            if pushes, let connection, s.sink !== connection {
                s.sink = connection
                s.notified = false
            } else if !pushes, s.sink != nil, superseded?.carriesEvents == true {
                s.sink = nil
            }
            // A connection that pushes (WebSocket) gets what was queued while none was attached.
            var notify: (any SessionSink)?
            if pushes, !s.queue.isEmpty, !s.notified, let sink = s.sink {
                s.notified = true
                notify = sink
            }
            let hold = mayHold && !first && connection != nil && (pushes || s.queue.isEmpty)
            if hold, let connection {
                s.holdCounter += 1
                s.held = Held(token: s.holdCounter, request: request, responder: connection, carriesEvents: !pushes)
                s.expiresAtNanoseconds = .max
                if !pushes {
                    s.sink = connection
                    s.notified = false
                }
                return .held(token: s.holdCounter, notify: notify)
            }
            s.expiresAtNanoseconds = expiresAt
            if pushes {
                return .immediate(events: [], notify: notify)
            }
            let events = Array(s.queue)
            s.resetQueue()
            s.notified = false
            return .immediate(events: events, notify: nil)
        }
    }

    /// Ends the held connect with `token`, if it is still held. Returns it, with the queued
    /// events if it carries them.
    func endHeld(token: UInt64?, responder: (any HeldConnectResponder)?, expiresAt: UInt64) -> (Held, [ByteBuffer])? {
        state.withLock { s in
            guard let held = s.held, token == nil || held.token == token else { return nil }
            if let responder, held.responder !== responder { return nil }
            s.held = nil
            if s.expiresAtNanoseconds == .max { s.expiresAtNanoseconds = expiresAt }
            var events: [ByteBuffer] = []
            if held.carriesEvents {
                events = Array(s.queue)
                s.resetQueue()
                s.notified = false
                if s.sink === held.responder { s.sink = nil }
            }
            return (held, events)
        }
    }

    /// Forgets `connection` (its socket closed): it no longer receives messages, and a connect
    /// it held is dropped without a reply.
    func detach(_ connection: AnyObject, expiresAt: UInt64) {
        state.withLock { s in
            if let sink = s.sink, sink === connection {
                s.sink = nil
                s.notified = false
            }
            if let held = s.held, held.responder === connection {
                s.held = nil
            }
            if s.held == nil, s.expiresAtNanoseconds > expiresAt { s.expiresAtNanoseconds = expiresAt }
        }
    }

    /// Extends the expiry deadline for a publish and takes one of the session's publish tokens
    /// (`rate` a second, bursts of twice that; 0: no limit). False when none is left.
    func touchForPublish(expiresAt: UInt64, now: UInt64, rate: Int) -> Bool {
        state.withLock { s in
            if s.expiresAtNanoseconds < expiresAt { s.expiresAtNanoseconds = expiresAt }
            guard rate > 0 else { return true }
            let burst = Double(2 * rate)
            if s.publishTokens < 0 {
                s.publishTokens = burst
            } else if now > s.publishTokensAt {
                s.publishTokens = min(burst, s.publishTokens + Double(now - s.publishTokensAt) / 1e9 * Double(rate))
            }
            s.publishTokensAt = now
            guard s.publishTokens >= 1 else { return false }
            s.publishTokens -= 1
            return true
        }
    }

    /// Extends the expiry deadline on activity other than connect (CometD does the same).
    func touch(expiresAt: UInt64) {
        state.withLock { s in
            if s.expiresAtNanoseconds < expiresAt { s.expiresAtNanoseconds = expiresAt }
        }
    }

    func isExpired(now: UInt64) -> Bool {
        state.withLock { $0.held == nil && $0.expiresAtNanoseconds <= now }
    }

    // MARK: Subscriptions

    /// The handshake's replay position for `channel`, unless a subscribe has used it: a client
    /// that unsubscribes and subscribes again must not get the same messages replayed twice.
    func handshakeReplayPosition(for channel: String) -> JSONValue? {
        guard let position = replayPositions?[channel] else { return nil }
        return state.withLock { $0.usedReplayPositions.contains(channel) } ? nil : position
    }

    /// After a successful subscribe: the handshake positions of `channels` are used up.
    func useHandshakeReplayPositions(_ channels: [String]) {
        guard let replayPositions else { return }
        let used = channels.filter { replayPositions[$0] != nil }
        if !used.isEmpty { state.withLock { $0.usedReplayPositions.formUnion(used) } }
    }

    /// Marks the session closed and returns what the caller must release.
    func close() -> (patterns: [ChannelPattern], held: Held?, sink: (any SessionSink)?)? {
        state.withLock { s in
            if s.closed { return nil }
            s.closed = true
            let patterns = Array(s.subscriptions.values)
            s.subscriptions.removeAll()
            let held = s.held
            s.held = nil
            let sink = s.sink
            s.sink = nil
            s.resetQueue()
            s.throttled.removeAll()
            s.throttledBytes = 0
            return (patterns, held, sink)
        }
    }
}

extension Session: Hashable {
    public static func == (lhs: Session, rhs: Session) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
