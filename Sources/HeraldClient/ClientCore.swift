import HeraldProtocol
import Logging
import NIOCore

/// The client's state and protocol: one actor owns the connection, the session, the
/// requests waiting for replies and the subscriptions, and runs the connect loop.
///
/// Replies are matched to requests by `id`. Deliveries are routed to every local subscription
/// whose pattern matches, and each subscription remembers the last `(epoch, offset)` it was
/// given per channel: that is where it resumes after a reconnect, and how a catch-up message
/// it already has is recognised and dropped.
actor ClientCore {
    typealias RawEvent = HeraldEvent<ByteBuffer>

    struct Pending {
        let continuation: ReadySignal<BayeuxMessage>
        let deadline: ContinuousClock.Instant
        let generation: Int
    }

    final class Subscription {
        let id: Int
        let pattern: ChannelPattern
        let continuation: AsyncThrowingStream<RawEvent, any Error>.Continuation
        /// Messages yielded that the consumer has not taken yet.
        let buffered: BufferedMessages
        /// While the consumer is behind (dropping, until it is empty again): per channel, how
        /// many messages were dropped and the last position delivered before the first of them.
        var dropped: [(channel: String, count: Int, after: HeraldPosition?)] = []
        /// The caller's start position, used until the first successful subscribe.
        var replay: HeraldReplay?
        /// The last position delivered, per concrete channel.
        var positions: [String: HeraldPosition] = [:]
        /// Where the subscription started, per channel with history (the server's
        /// `ext.herald.positions`): a resume starts there on channels with nothing delivered yet.
        var starts: [String: HeraldPosition] = [:]

        /// The position to resume `channel` from: the last delivered, else the start.
        func resumePosition(_ channel: String) -> HeraldPosition? { positions[channel] ?? starts[channel] }
        /// Subscribed on the server on the current connection.
        var isActive = false
        /// Waiting for the first subscribe's outcome (`subscribe` returns then).
        var ready: (continuation: CheckedContinuation<Void, any Error>, deadline: ContinuousClock.Instant)?

        init(id: Int, pattern: ChannelPattern, replay: HeraldReplay?, continuation: AsyncThrowingStream<RawEvent, any Error>.Continuation, buffered: BufferedMessages) {
            self.id = id
            self.pattern = pattern
            self.replay = replay
            self.continuation = continuation
            self.buffered = buffered
        }
    }

    let transport: any HeraldTransport
    let configuration: HeraldClientConfiguration
    let logger: Logger
    let clock = ContinuousClock()

    private var connection: (any HeraldTransportConnection)?
    /// Counts connections, so that late events of a closed one are ignored.
    private var generation = 0
    private var clientId: String?
    private(set) var state = HeraldConnectionState.connecting
    private var stateObservers: [Int: AsyncStream<HeraldConnectionState>.Continuation] = [:]
    private var connectedWaiters: [Int: (continuation: CheckedContinuation<Void, any Error>, deadline: ContinuousClock.Instant)] = [:]
    private var pending: [Int: Pending] = [:]
    private var nextId = 1
    private var outbox: [ByteBuffer] = []
    private var isFlushing = false
    private var subscriptions: [Int: Subscription] = [:]
    /// Subscriptions by exact channel, and the wildcard ones (routing).
    private var exact: [String: [Int]] = [:]
    private var wildcards: [Int] = []
    /// Channels the server said keep no history: positions on them are not sent.
    private var noHistory: Set<String> = []
    /// The server's last advice: connect timeout and interval (ms).
    private var adviceTimeout = 30_000
    private var adviceInterval = 0
    private(set) var isClosed = false
    /// Why the client closed, for requests that come after.
    private var closeError: HeraldClientError?

    init(transport: any HeraldTransport, configuration: HeraldClientConfiguration, logger: Logger) {
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: State

    private func setState(_ new: HeraldConnectionState) {
        guard new != state else { return }
        state = new
        for observer in stateObservers.values { observer.yield(new) }
        if case .closed = new {
            for observer in stateObservers.values { observer.finish() }
            stateObservers.removeAll()
        }
    }

    func observeStates(_ continuation: AsyncStream<HeraldConnectionState>.Continuation) {
        continuation.yield(state)
        if case .closed = state {
            continuation.finish()
            return
        }
        let id = takeId()
        stateObservers[id] = continuation
        continuation.onTermination = { _ in Task { await self.stopObserving(id) } }
    }

    private func stopObserving(_ id: Int) { stateObservers[id] = nil }

    private func takeId() -> Int {
        defer { nextId += 1 }
        return nextId
    }

    /// Waits until handshaken, for at most `timeout`.
    func waitUntilConnected(timeout: Duration) async throws {
        if let closeError { throw closeError }
        if clientId != nil { return }
        let id = takeId()
        try await withCheckedThrowingContinuation { continuation in
            connectedWaiters[id] = (continuation, clock.now.advanced(by: timeout))
        }
    }

    // MARK: The connection loop

    /// Connects, and reconnects until closed. With `failFast`, a failure before the first
    /// successful handshake ends it with that error.
    func run(failFast: Bool) async throws {
        var attempt = 0
        var everConnected = false
        let sweeper = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                await self?.sweep()
            }
        }
        defer { sweeper.cancel() }
        while !isClosed {
            if attempt > 0 {
                if let maximum = configuration.reconnect.maximumAttempts, attempt > maximum {
                    let error = HeraldClientError(.connectionClosed, detail: "gave up after \(attempt - 1) reconnect attempts")
                    finish(error)
                    throw error
                }
                setState(.reconnecting(attempt: attempt))
                let wait = max(configuration.reconnect.delay(attempt: attempt), .milliseconds(adviceInterval))
                await sleep(wait)
                if isClosed { break }
            } else if !everConnected {
                setState(.connecting)
            }
            do {
                try await session(onConnected: { everConnected = true; attempt = 0 })
                // The server asked for a new handshake: at once, without counting a failure.
                attempt = 0
            } catch let error as HeraldClientError where error.code == .handshakeRefused {
                logger.warning("Handshake refused", metadata: ["herald.error": "\(error)"])
                finish(error)
                throw error
            } catch {
                if isClosed { break }
                let clientError = Self.clientError(error)
                if failFast && !everConnected {
                    finish(clientError)
                    throw clientError
                }
                logger.info("Connection lost", metadata: ["herald.error": "\(clientError)"])
                attempt += 1
            }
        }
    }

    /// Sleeps for `duration`, waking early when the client is closed.
    private func sleep(_ duration: Duration) async {
        let end = clock.now.advanced(by: duration)
        while !isClosed, clock.now < end {
            try? await Task.sleep(for: min(end - clock.now, .milliseconds(50)))
        }
    }

    static func clientError(_ error: any Error) -> HeraldClientError {
        if let error = error as? HeraldClientError { return error }
        return HeraldClientError(.unreachable, detail: "\(error)")
    }

    /// One connection: open, handshake, resubscribe, then connect until it ends. Returns when
    /// the server advises a new handshake; throws when the connection is lost.
    private func session(onConnected: () -> Void) async throws {
        let opened = try await withDeadline(configuration.connectTimeout, "connecting") { [transport, logger] in
            try await transport.connect(logger: logger)
        }
        if isClosed {
            await opened.close()
            return
        }
        generation += 1
        let current = generation
        connection = opened
        let reader = Task { [weak self] in
            do {
                for try await batch in opened.inbound { await self?.receive(batch, generation: current) }
                await self?.connectionLost(generation: current, HeraldClientError(.connectionClosed, detail: "the server closed the connection"))
            } catch {
                await self?.connectionLost(generation: current, Self.clientError(error))
            }
        }
        defer {
            reader.cancel()
            connectionLost(generation: current, HeraldClientError(.connectionClosed, detail: "reconnecting"))
            Task { await opened.close() }
        }

        let handshake = try await request(handshakeMessage(opened), timeout: configuration.connectTimeout, generation: current)
        readAdvice(handshake)
        guard handshake.successful == true, let id = handshake.clientId else {
            let error = handshake.error ?? "no clientId"
            // A refusal without advice, or with `none`, will not succeed if repeated.
            if handshake.advice?["reconnect"]?.stringValue ?? "none" == "none" {
                throw HeraldClientError(.handshakeRefused, bayeuxError: handshake.error, detail: handshake.error == nil ? error : nil)
            }
            throw HeraldClientError(.connectionClosed, bayeuxError: handshake.error, detail: "handshake failed; retrying")
        }
        clientId = id
        onConnected()
        setState(.connected(transport: opened.transport))
        for (_, waiter) in connectedWaiters { waiter.continuation.resume() }
        connectedWaiters.removeAll()
        for subscription in subscriptions.values.sorted(by: { $0.id < $1.id }) {
            Task { await self.establish(subscription.id) }
        }

        while !isClosed {
            let connect = OutgoingMessage(channel: MetaChannel.connect.rawValue, id: takeId(), [
                ("clientId", .string(id)), ("connectionType", .string(opened.connectionType)),
            ])
            let reply = try await request(connect, isConnect: true, timeout: .milliseconds(adviceTimeout) + configuration.requestTimeout, generation: current)
            readAdvice(reply)
            if reply.successful == true {
                if adviceInterval > 0 { await sleep(.milliseconds(adviceInterval)) }
                continue
            }
            switch reply.advice?["reconnect"]?.stringValue {
            case "none"?:
                let error = HeraldClientError(.connectionClosed, bayeuxError: reply.error, detail: "the server advised not to reconnect")
                finish(error)
                throw error
            default:
                logger.debug("Connect refused; handshaking again", metadata: ["herald.error": "\(reply.error ?? "")"])
                return
            }
        }
    }

    private func handshakeMessage(_ connection: any HeraldTransportConnection) -> OutgoingMessage {
        var ext = configuration.handshakeExtension
        if let token = configuration.token {
            var auth = ext["auth"]?.objectValue ?? JSONObject()
            auth["token"] = .string(token)
            ext["auth"] = .object(auth)
        }
        var types: [JSONValue] = [.string(connection.connectionType)]
        for other in ["websocket", "long-polling"] where other != connection.connectionType { types.append(.string(other)) }
        var members: [(String, JSONValue)] = [("version", .string("1.0")), ("supportedConnectionTypes", .array(types))]
        if !ext.isEmpty { members.append(("ext", .object(ext))) }
        return OutgoingMessage(channel: MetaChannel.handshake.rawValue, id: takeId(), members)
    }

    private func readAdvice(_ message: BayeuxMessage) {
        guard let advice = message.advice else { return }
        if let timeout = advice["timeout"]?.intValue { adviceTimeout = max(0, min(timeout, 600_000)) }
        if let interval = advice["interval"]?.intValue { adviceInterval = max(0, min(interval, 60_000)) }
    }

    /// The connection of `generation` ended: fail what waits on it, deactivate subscriptions.
    private func connectionLost(generation lost: Int, _ error: HeraldClientError) {
        guard lost == generation, connection != nil else { return }
        connection = nil
        clientId = nil
        outbox.removeAll()
        for subscription in subscriptions.values { subscription.isActive = false }
        let failed = pending.filter { $0.value.generation == lost }
        for (id, request) in failed {
            pending[id] = nil
            request.continuation.resume(throwing: error)
        }
    }

    /// Ends the client: every waiter and subscription gets `error` (nil: a normal close).
    private func finish(_ error: HeraldClientError?) {
        guard !isClosed else { return }
        isClosed = true
        let reason = error ?? HeraldClientError(.connectionClosed, detail: "the client was closed")
        closeError = reason
        for (_, request) in pending { request.continuation.resume(throwing: reason) }
        pending.removeAll()
        for (_, waiter) in connectedWaiters { waiter.continuation.resume(throwing: reason) }
        connectedWaiters.removeAll()
        for subscription in subscriptions.values {
            subscription.ready?.continuation.resume(throwing: reason)
            subscription.ready = nil
            // A consumer reading to the end learns of what was dropped.
            flushGaps(subscription)
            if let error { subscription.continuation.finish(throwing: error) } else { subscription.continuation.finish() }
        }
        subscriptions.removeAll()
        exact.removeAll()
        wildcards.removeAll()
        setState(.closed(reason: error?.description))
    }

    /// Closes: `/meta/disconnect` (waiting up to a second for its reply), then the connection.
    func close() async {
        guard !isClosed else { return }
        if let id = clientId, let connection {
            let message = OutgoingMessage(channel: MetaChannel.disconnect.rawValue, id: takeId(), [("clientId", .string(id))])
            _ = try? await request(message, timeout: .seconds(1), generation: generation)
            finish(nil)
            await connection.close()
        } else {
            finish(nil)
        }
    }

    /// Fails requests and waiters past their deadline.
    private func sweep() {
        let now = clock.now
        for (id, request) in pending where request.deadline <= now {
            pending[id] = nil
            request.continuation.resume(throwing: HeraldClientError(.timedOut, detail: "no reply from the server in time"))
        }
        for (id, waiter) in connectedWaiters where waiter.deadline <= now {
            connectedWaiters[id] = nil
            waiter.continuation.resume(throwing: HeraldClientError(.timedOut, detail: "not connected in time"))
        }
        for subscription in subscriptions.values {
            if let ready = subscription.ready, ready.deadline <= now {
                subscription.ready = nil
                ready.continuation.resume(throwing: HeraldClientError(.timedOut, channel: subscription.pattern.rawValue, detail: "the subscribe was not answered in time"))
                remove(subscription.id, unsubscribe: true)
            }
        }
    }

    // MARK: Requests

    /// Sends a request built by `encode` (given its id) once connected, and waits for its reply.
    private func request(_ message: OutgoingMessage, isConnect: Bool = false, timeout: Duration, generation expected: Int) async throws -> BayeuxMessage {
        try await send(message, isConnect: isConnect, timeout: timeout, generation: expected).value()
    }

    /// Queues `message` now (in call order) and returns where its reply will arrive.
    private func send(_ message: OutgoingMessage, isConnect: Bool = false, timeout: Duration, generation expected: Int) throws -> ReadySignal<BayeuxMessage> {
        guard let connection, expected == generation else {
            throw HeraldClientError(.connectionClosed, detail: "the connection was lost")
        }
        let encoded = message.buffer
        let reply = ReadySignal<BayeuxMessage>()
        pending[message.id] = Pending(continuation: reply, deadline: clock.now.advanced(by: timeout), generation: expected)
        if isConnect {
            Task {
                do {
                    try await connection.send(OutgoingMessage.batch([encoded]), isConnect: true)
                } catch {
                    self.connectionLost(generation: expected, Self.clientError(error))
                }
            }
        } else {
            enqueue(encoded)
        }
        return reply
    }

    /// A publish or subscribe: waits for a connection first, then for the reply.
    func call(channel: String, timeout: Duration, _ members: [(String, JSONValue)]) async throws -> BayeuxMessage {
        try await start(channel: channel, timeout: timeout, members).value()
    }

    /// Waits for a connection, then queues the message: messages started one after another
    /// go out in that order. The reply arrives at the returned signal.
    func start(channel: String, timeout: Duration, _ members: [(String, JSONValue)]) async throws -> ReadySignal<BayeuxMessage> {
        let deadline = clock.now.advanced(by: timeout)
        try await waitUntilConnected(timeout: timeout)
        guard let id = clientId else { throw HeraldClientError(.connectionClosed, detail: "the connection was lost") }
        let message = OutgoingMessage(channel: channel, id: takeId(), [("clientId", .string(id))] + members)
        return try send(message, timeout: max(deadline - clock.now, .milliseconds(1)), generation: generation)
    }

    private func enqueue(_ message: ByteBuffer) {
        outbox.append(message)
        guard !isFlushing else { return }
        isFlushing = true
        Task { await flush() }
    }

    /// Sends everything queued, one batch per send: messages queued while a send is under way
    /// go together in the next.
    private func flush() async {
        while !outbox.isEmpty, let connection {
            let current = generation
            let batch = OutgoingMessage.batch(outbox)
            outbox.removeAll(keepingCapacity: true)
            do {
                try await connection.send(batch, isConnect: false)
            } catch {
                connectionLost(generation: current, Self.clientError(error))
            }
        }
        isFlushing = false
    }

    // MARK: Receiving

    private func receive(_ batch: ByteBuffer, generation current: Int) {
        guard current == generation else { return }
        let messages: [BayeuxMessage]
        do {
            messages = try MessageCodec.decodeBatch(batch, maxMessages: .max)
        } catch {
            logger.warning("The server sent something that is not Bayeux", metadata: ["herald.error": "\(error)"])
            connectionLost(generation: current, HeraldClientError(.protocolViolation, detail: "\(error)"))
            return
        }
        for message in messages {
            if message.successful != nil || message.channel.map({ $0.hasPrefix("/meta/") }) ?? true {
                if let id = message.id?.intValue ?? message.id?.stringValue.flatMap({ Int($0) }), let request = pending.removeValue(forKey: id) {
                    request.continuation.resume(returning: message)
                }
            } else if let channel = message.channel, let data = message.data {
                deliver(channel: channel, data: data, ext: message.ext)
            }
        }
    }

    private func deliver(channel: String, data: ByteBuffer, ext: JSONObject?) {
        let herald = ext?.herald
        var position: HeraldPosition?
        if let herald, let offset = herald["offset"]?.intValue, let epoch = herald["epoch"]?.stringValue {
            position = HeraldPosition(epoch: epoch, offset: offset)
        }
        let message = HeraldMessage(channel: channel, data: data, ext: ext, position: position, isRetained: herald?["retained"]?.boolValue ?? false)
        if let ids = exact[channel] {
            for id in ids { if let subscription = subscriptions[id] { offer(message, to: subscription) } }
        }
        guard !wildcards.isEmpty, let name = ChannelName(channel) else { return }
        for id in wildcards {
            if let subscription = subscriptions[id], subscription.pattern.matches(name) { offer(message, to: subscription) }
        }
    }

    /// Yields `message` unless the subscription already has it (a catch-up message at or
    /// before the position it was given last on that channel), or its consumer is
    /// `maximumBufferedMessages` behind: then it is dropped, and the consumer gets a gap
    /// before the next message it does get.
    private func offer(_ message: HeraldMessage<ByteBuffer>, to subscription: Subscription) {
        let previous = subscription.positions[message.channel]
        if let position = message.position {
            if let previous, previous.epoch == position.epoch, position.offset <= previous.offset {
                return
            }
            subscription.positions[message.channel] = position
        }
        // Dropping starts at the limit and goes on until the consumer has taken half of what
        // it held: one gap per channel per episode, not one per freed slot.
        let limit = max(1, configuration.maximumBufferedMessages)
        let buffered = subscription.buffered.count.load(ordering: .relaxed)
        if buffered >= limit || (!subscription.dropped.isEmpty && buffered > limit / 2) {
            if subscription.dropped.isEmpty {
                logger.warning("Subscriber fell behind; dropping its messages until it catches up", metadata: ["herald.pattern": "\(subscription.pattern)", "herald.buffered": "\(limit)"])
            }
            if let index = subscription.dropped.firstIndex(where: { $0.channel == message.channel }) {
                subscription.dropped[index].count += 1
            } else {
                subscription.dropped.append((message.channel, 1, previous))
            }
            return
        }
        flushGaps(subscription)
        subscription.buffered.count.add(1, ordering: .relaxed)
        subscription.continuation.yield(.message(message))
    }

    /// Tells the consumer, one gap per channel, what was dropped while it was behind.
    private func flushGaps(_ subscription: Subscription) {
        guard !subscription.dropped.isEmpty else { return }
        for drop in subscription.dropped {
            subscription.continuation.yield(.gap(HeraldGap(channel: drop.channel, lastDelivered: drop.after, bayeuxError: "", droppedMessages: drop.count)))
        }
        logger.notice("Subscriber caught up", metadata: ["herald.pattern": "\(subscription.pattern)", "herald.dropped": "\(subscription.dropped.reduce(0) { $0 + $1.count })"])
        subscription.dropped = []
    }

    // MARK: Subscriptions

    /// Adds a subscription and waits for the server to accept it.
    func subscribe(_ pattern: ChannelPattern, replay: HeraldReplay?, continuation: AsyncThrowingStream<RawEvent, any Error>.Continuation, buffered: BufferedMessages) async throws -> Int {
        if let closeError { throw closeError }
        let id = takeId()
        let subscription = Subscription(id: id, pattern: pattern, replay: replay, continuation: continuation, buffered: buffered)
        subscriptions[id] = subscription
        if pattern.isWildcard { wildcards.append(id) } else { exact[pattern.rawValue, default: []].append(id) }
        continuation.onTermination = { _ in Task { await self.remove(id, unsubscribe: true) } }
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, any Error>) in
            subscription.ready = (ready, clock.now.advanced(by: configuration.requestTimeout))
            if clientId != nil { Task { await self.establish(id) } }
        }
        return id
    }

    /// Subscribes `id` on the current connection, resuming from its positions: a position per
    /// channel it has seen (for a wildcard, its channels join the subscribe, and are dropped
    /// again after). Positions the server no longer serves become gap events, and the
    /// subscribe is retried without them.
    private func establish(_ id: Int) async {
        var retries = 0
        while let subscription = subscriptions[id], !subscription.isActive, let current = clientId {
            let currentGeneration = generation
            let pattern = subscription.pattern.rawValue
            var patterns = [pattern]
            var replay = JSONObject()
            if subscription.pattern.isWildcard {
                if let start = subscription.replay, subscription.ready != nil { replay[pattern] = start.json }
                for channel in Set(subscription.positions.keys).union(subscription.starts.keys).sorted() where !noHistory.contains(channel) {
                    guard let position = subscription.resumePosition(channel) else { continue }
                    patterns.append(channel)
                    replay[channel] = HeraldReplay.after(offset: position.offset, epoch: position.epoch).json
                }
            } else if let position = subscription.resumePosition(pattern), !noHistory.contains(pattern) {
                replay[pattern] = HeraldReplay.after(offset: position.offset, epoch: position.epoch).json
            } else if let start = subscription.replay {
                replay[pattern] = start.json
            }
            var members: [(String, JSONValue)] = [("clientId", .string(current)), ("subscription", patterns.count == 1 ? .string(pattern) : .array(patterns.map { .string($0) }))]
            // `positions`: the server says where the subscription starts on channels with history.
            var ext = JSONObject([("herald", .object(JSONObject([("positions", .bool(true))])))])
            if !replay.isEmpty { ext["replay"] = .object(replay) }
            members.append(("ext", .object(ext)))
            let reply: BayeuxMessage
            do {
                reply = try await request(OutgoingMessage(channel: MetaChannel.subscribe.rawValue, id: takeId(), members), timeout: configuration.requestTimeout, generation: currentGeneration)
            } catch {
                return  // the connection went; the next one subscribes again
            }
            guard subscriptions[id] === subscription else {
                // Removed while the subscribe was under way.
                if patternIsUnused(pattern) { unsubscribe(patterns) }
                return
            }
            if reply.successful == true {
                if let starts = reply.ext?.herald?["positions"]?.objectValue {
                    for (channel, value) in starts.members where subscription.resumePosition(channel) == nil {
                        if let offset = value.objectValue?["offset"]?.intValue, let epoch = value.objectValue?["epoch"]?.stringValue {
                            subscription.starts[channel] = HeraldPosition(epoch: epoch, offset: offset)
                        }
                    }
                }
                subscription.isActive = true
                subscription.replay = nil
                subscription.ready?.continuation.resume()
                subscription.ready = nil
                let extras = patterns.dropFirst().filter { patternIsUnused($0) }
                if !extras.isEmpty { unsubscribe(Array(extras)) }
                return
            }
            retries += 1
            let error = reply.error ?? "subscribe refused"
            let code = Int(error.prefix { $0 != ":" })
            let refused = reply.ext?.herald?["channel"]?.stringValue
            if let code, code == 409 || code == 410, let channel = refused, retries <= patterns.count + 2 {
                if subscription.ready != nil, subscription.replay != nil, subscription.positions[channel] == nil {
                    // The caller's own start position: theirs to decide.
                    fail(subscription, HeraldClientError(.replayPositionLost, bayeuxError: error, channel: channel))
                    return
                }
                let herald = reply.ext?.herald
                let gap = HeraldGap(channel: channel, lastDelivered: subscription.resumePosition(channel), bayeuxError: error, epoch: herald?["epoch"]?.stringValue, oldestOffset: herald?["oldestOffset"]?.intValue, latestOffset: herald?["latestOffset"]?.intValue)
                logger.notice("Resume position lost", metadata: ["herald.channel": "\(channel)", "herald.error": "\(error)"])
                subscription.positions[channel] = nil
                subscription.starts[channel] = nil
                subscription.continuation.yield(.gap(gap))
                continue
            }
            if code == 400, error.hasSuffix("Channel keeps no history"), retries <= patterns.count + 2 {
                let channel = error.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).dropFirst().first.map(String.init) ?? pattern
                if subscription.ready != nil, subscription.replay != nil, subscription.positions[channel] == nil {
                    fail(subscription, HeraldClientError(.subscriptionDenied, bayeuxError: error, channel: channel))
                    return
                }
                noHistory.insert(channel)
                continue
            }
            fail(subscription, HeraldClientError(.subscriptionDenied, bayeuxError: error, channel: pattern))
            return
        }
    }

    private func fail(_ subscription: Subscription, _ error: HeraldClientError) {
        if let ready = subscription.ready {
            subscription.ready = nil
            ready.continuation.resume(throwing: error)
        } else {
            flushGaps(subscription)
            subscription.continuation.finish(throwing: error)
        }
        remove(subscription.id, unsubscribe: false)
    }

    private func patternIsUnused(_ pattern: String) -> Bool {
        !subscriptions.values.contains { $0.pattern.rawValue == pattern }
    }

    /// Sends `/meta/unsubscribe` without waiting for the reply.
    private func unsubscribe(_ patterns: [String]) {
        guard let current = clientId, !patterns.isEmpty else { return }
        let value: JSONValue = patterns.count == 1 ? .string(patterns[0]) : .array(patterns.map { .string($0) })
        let message = OutgoingMessage(channel: MetaChannel.unsubscribe.rawValue, id: takeId(), [("clientId", .string(current)), ("subscription", value)])
        let expected = generation
        Task { _ = try? await self.request(message, timeout: self.configuration.requestTimeout, generation: expected) }
    }

    /// Removes a subscription (cancelled, unsubscribed, refused); unsubscribes its pattern on
    /// the server when no other subscription holds it.
    func remove(_ id: Int, unsubscribe sendUnsubscribe: Bool) {
        guard let subscription = subscriptions.removeValue(forKey: id) else { return }
        let pattern = subscription.pattern.rawValue
        if subscription.pattern.isWildcard {
            wildcards.removeAll { $0 == id }
        } else {
            exact[pattern]?.removeAll { $0 == id }
            if exact[pattern]?.isEmpty == true { exact[pattern] = nil }
        }
        flushGaps(subscription)
        subscription.continuation.finish()
        if sendUnsubscribe, subscription.isActive, patternIsUnused(pattern) { unsubscribe([pattern]) }
    }

    var subscriptionCount: Int { subscriptions.count }

    private func withDeadline<T: Sendable>(_ timeout: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw HeraldClientError(.timedOut, detail: "\(what) took longer than \(timeout)")
            }
            return value
        }
    }
}
