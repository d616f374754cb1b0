package import HeraldProtocol
package import NIOCore

/// What the transport must send after processing one batch.
package struct BatchResult: Sendable {
    /// Encoded reply objects, in request order (without a held connect's reply).
    package var replies: [ByteBuffer] = []
    /// Events to append to the response (HTTP transports, immediate connect replies).
    package var events: [ByteBuffer] = []
    /// A connect whose reply comes later.
    package var held: HeldConnect?
    /// The session a `/meta/connect` in this batch bound to the connection.
    package var connectedSession: Session?
    /// Set when the batch published to a `durable` channel: send `replies` only from
    /// `commitGate.whenCommitted`.
    package var commitGate: CommitGate?

    package init() {}

    package var isEmpty: Bool { replies.isEmpty && events.isEmpty }
}

extension Broker {
    /// Processes one batch from a client, in order.
    ///
    /// - Parameters:
    ///   - type: the transport the batch came on.
    ///   - connection: where pushed messages and the held connect reply go. For WebSocket it is
    ///     the socket; for HTTP it is this request's response (nil if it cannot be held).
    ///   - admitHandshake: asked once per handshake (after the first of a batch, which is the
    ///     only one a batch may hold); the transport's rate limits answer with the `Limit`
    ///     that refuses it, or nil to admit it.
    ///   - credential: the batch's token, verified: a handshake's, or one presented again to
    ///     refresh a session or to show that it is the client's own (`SessionBinding`).
    ///   - proof: the connection and the `BAYEUX_BROWSER` cookie the batch came with.
    package func process(_ messages: [BayeuxMessage], type: ConnectionType, connection: (any BayeuxConnection)?, admitHandshake: (() -> Limit?)? = nil, credential: HandshakeCredential = .absent, proof: ClientProof = ClientProof()) -> BatchResult {
        var result = BatchResult()
        var handshakes = 0
        let exts = extensions.withLock { $0 }
        // A connect that shares an HTTP request with other messages is never held
        // (bayeux-notes rule 6): the other replies would wait with it.
        let mayHoldInBatch = type == .websocket || messages.count == 1
        for var message in messages {
            var session = message.clientId.flatMap { id in sessions.withLock { $0[id] } }
            if let bound = session?.binding, !bound.admits(proof, credential: credential) {
                // Another client's clientId: it does not exist for this one.
                limits.record(.sessionBinding)
                session = nil
            }
            var rejected: BayeuxError?
            if message.byteCount > configuration.maxMessageBytes {
                rejected = .messageTooLarge(limit: configuration.maxMessageBytes)
                limits.record(.messageBytes)
            }
            if message.idTooLong { limits.record(.idBytes) }
            var dropped = false
            for ext in exts where rejected == nil && !dropped {
                switch ext.incoming(&message, session: session) {
                case .continue: break
                case .reject(let error): rejected = error
                case .drop: dropped = true
                }
            }
            if dropped { continue }
            var reply: JSONObject?
            if let rejected {
                reply = errorReply(message, rejected)
            } else if let field = message.malformedField {
                reply = errorReply(message, BayeuxError(code: 400, args: [field], message: "Invalid parameter"))
            } else if message.channel == MetaChannel.handshake.rawValue, let refusal = handshakeRefusal(&handshakes, admit: admitHandshake) {
                limits.record(refusal)
                reply = handshakeRefused(message, by: refusal)
            } else if exts.isEmpty, let channel = message.channel, MetaChannel.command(channel) == nil {
                // A publish with no extension to see its reply: a successful one is
                // acknowledged without building the reply object.
                reply = publish(message, channel: channel, session: session, result: &result)
                if reply == nil {
                    result.replies.append(encodePublishAcknowledgement(message, channel: channel))
                    continue
                }
            } else {
                reply = handle(message, session: session, type: type, connection: connection, mayHold: mayHoldInBatch, credential: credential, proof: proof, result: &result)
            }
            guard var reply else { continue }
            if reply["successful"] == .bool(false) { counters.errors.add(1, ordering: .relaxed) }
            for ext in exts { ext.outgoingReply(&reply, request: message, session: session) }
            result.replies.append(encode(reply))
        }
        return result
    }

    func handle(_ message: BayeuxMessage, session: Session?, type: ConnectionType, connection: (any BayeuxConnection)?, mayHold: Bool, credential: HandshakeCredential = .absent, proof: ClientProof = ClientProof(), result: inout BatchResult) -> JSONObject? {
        guard let channel = message.channel else {
            return errorReply(message, .missingParameter("channel"))
        }
        if let meta = MetaChannel.command(channel) {
            switch meta {
            case .handshake: return handshake(message, credential: credential, proof: proof)
            case .connect:
                // A fresh token for the same subject extends the session past the old `exp`.
                if case .valid(let fresh) = credential, let session, !session.refresh(fresh) {
                    logger.debug("token refresh ignored: another subject", metadata: ["session.id": "\(session.id)"])
                }
                return connect(message, session: session, type: type, connection: connection, mayHold: mayHold, result: &result)
            case .subscribe: return subscribe(message, session: session)
            case .unsubscribe: return unsubscribe(message, session: session)
            case .disconnect: return disconnect(message, session: session)
            }
        }
        return publish(message, channel: channel, session: session, result: &result) ?? publishAcknowledgement(message)
    }

    // MARK: Meta channels

    /// Why this handshake, the `count`th of its batch so far, may not go ahead, if it may not.
    private func handshakeRefusal(_ count: inout Int, admit: (() -> Limit?)?) -> Limit? {
        count += 1
        if count > 1 { return .handshakesPerBatch }
        return admit?()
    }

    /// The reply to a handshake a limit refused: `429`, and advice to handshake again after a
    /// second. Nothing is logged per refusal: a flood must not become a flood of log lines.
    func handshakeRefused(_ message: BayeuxMessage, by limit: Limit) -> JSONObject {
        let reply = baseReply(message)
        let text = limit == .handshakesPerBatch ? "One handshake per message batch" : "Too many handshakes"
        return failed(reply, BayeuxError(code: 429, args: [limit.rawValue], message: text), advice: Advice(reconnect: .handshake, intervalMilliseconds: 1000))
    }

    func handshake(_ message: BayeuxMessage, credential: HandshakeCredential = .absent, proof: ClientProof = ClientProof()) -> JSONObject {
        var reply = baseReply(message)
        reply["version"] = .string("1.0")
        reply["supportedConnectionTypes"] = .array(ConnectionType.supported.map { .string($0) })
        var identity: ClientIdentity?
        if configuration.requiresAuthentication {
            switch credential {
            case .valid(let verified):
                identity = verified
            case .absent where configuration.channels.admitsAnonymous:
                // Some channels are open to anyone: an anonymous session, which gets only those.
                break
            case .absent:
                limits.record(.authentication)
                return failed(reply, BayeuxError(code: 401, args: [], message: "Authentication required"), advice: Advice(reconnect: .none, intervalMilliseconds: 0))
            case .invalid(let reason):
                limits.record(.authentication)
                logger.debug("handshake refused: invalid token", metadata: ["reason": "\(reason)"])
                return failed(reply, BayeuxError(code: 401, args: [], message: "Invalid token"), advice: Advice(reconnect: .none, intervalMilliseconds: 0))
            }
        }
        guard message.version != nil else {
            return failed(reply, .missingParameter("version"), advice: .handshake)
        }
        guard let offered = message.supportedConnectionTypes else {
            return failed(reply, .missingParameter("supportedConnectionTypes"), advice: .handshake)
        }
        guard offered.contains(where: { ConnectionType(rawValue: $0) != nil }) else {
            return failed(reply, .connectionTypesNotSupported(offered), advice: .handshake)
        }
        let now = clock.nowNanoseconds()
        let replay = message.ext?["replay"]?.objectValue
        // With tokens required, the session is bound to what this handshake came with.
        let binding = configuration.requiresAuthentication ? SessionBinding(connection: proof.connection, browser: proof.browser, subject: identity?.subject) : nil
        let session = Session(id: ClientID.generate(), expiresAtNanoseconds: expiry(now), replayPositions: replay, identity: identity, binding: binding)
        let admitted = sessions.withLock { table -> Bool in
            guard table.count < configuration.maxSessions else { return false }
            table[session.id] = session
            return true
        }
        guard admitted else {
            let refused = limits.record(.sessions)
            // Once per 10,000 refusals: a handshake flood must not flood the log too.
            if refused % 10_000 == 1 {
                logger.warning("handshake refused: maxSessions reached", metadata: ["limit": "\(configuration.maxSessions)", "refused": "\(refused)"])
            }
            return failed(reply, BayeuxError(code: 503, args: [String(configuration.maxSessions)], message: "Too many sessions"), advice: Advice(reconnect: .handshake, intervalMilliseconds: 0))
        }
        counters.sessionsOpened.add(1, ordering: .relaxed)
        reply["minimumVersion"] = .string("1.0")
        reply["clientId"] = .string(session.id)
        reply["successful"] = .bool(true)
        reply["advice"] = retryAdvice.json
        if let replay = message.ext?["replay"], replay == .bool(true) || replay.objectValue != nil, logsChannels {
            // Salesforce's negotiation: the server confirms that it honours `ext.replay`.
            reply["ext"] = .object(JSONObject([("replay", .bool(true))]))
        }
        logger.debug("handshake", metadata: ["session.id": "\(session.id)"])
        return reply
    }

    func connect(_ message: BayeuxMessage, session: Session?, type: ConnectionType, connection: (any BayeuxConnection)?, mayHold: Bool, result: inout BatchResult) -> JSONObject? {
        guard let session else {
            var reply = baseReply(message)
            reply["successful"] = .bool(false)
            let now = clock.nowNanoseconds()
            if let id = message.clientId, let reason = kicked.withLock({ $0.reason(for: id, now: now) }) {
                // Disconnected by an operator: say why, and not to come back.
                reply["error"] = .string(BayeuxError(code: 402, args: [reason], message: "Unknown client").description)
                reply["advice"] = Advice.none.json
            } else {
                reply["error"] = .string(BayeuxError.unknownClient.description)
                reply["advice"] = Advice.handshake.json
            }
            return reply
        }
        guard let requested = message.connectionType else {
            return errorReply(message, .missingParameter("connectionType"), session: session)
        }
        // The transport the batch came on decides how events flow; a client that names
        // another supported type in the message (Faye sends "long-polling" over CORS XHR) is
        // served by the transport it actually used.
        guard ConnectionType(rawValue: requested) != nil else {
            return failedWithClient(message, .connectionTypesNotSupported([requested]), session: session)
        }
        let now = clock.nowNanoseconds()
        let clientTimeout = message.adviceTimeoutMilliseconds
        let timeoutMilliseconds = min(clientTimeout ?? configuration.connectTimeoutMilliseconds, configuration.connectTimeoutMilliseconds)
        var superseded: Session.Held?
        let decision = session.beginConnect(
            request: message,
            type: type,
            connection: connection,
            mayHold: mayHold && timeoutMilliseconds > 0,
            expiresAt: expiry(now),
            superseded: &superseded
        )
        if let superseded {
            // Only one connect is held per session: answer the older one at once
            // (CometD fails it, Faye orphans it; an empty successful reply is kinder).
            let reply = connectReply(superseded.request, session: session, advice: retryAdvice, error: nil)
            superseded.responder.completeConnect(session, reply: reply, events: [])
        }
        result.connectedSession = session
        switch decision {
        case .held(let token, let notify):
            notify?.messagesAvailable(session)
            result.held = HeldConnect(session: session, token: token, timeout: .milliseconds(Int64(timeoutMilliseconds)))
            return nil
        case .immediate(let events, let notify):
            result.events.append(contentsOf: events)
            notify?.messagesAvailable(session)
            var reply = baseReply(message)
            reply["clientId"] = .string(session.id)
            reply["successful"] = .bool(true)
            reply["advice"] = retryAdvice.json
            return reply
        }
    }

    func subscribe(_ message: BayeuxMessage, session: Session?) -> JSONObject {
        changeSubscriptions(message, session: session, subscribing: true)
    }

    func unsubscribe(_ message: BayeuxMessage, session: Session?) -> JSONObject {
        changeSubscriptions(message, session: session, subscribing: false)
    }

    /// Validates the whole subscription list first, then applies it at once.
    func changeSubscriptions(_ message: BayeuxMessage, session: Session?, subscribing: Bool) -> JSONObject {
        var reply = baseReply(message)
        if let subscription = message.subscription { reply["subscription"] = subscription }
        guard let session else {
            return failed(reply, .unknownClient, advice: nil)
        }
        reply["clientId"] = .string(session.id)
        let names: [String]
        switch message.subscription {
        case .string(let s)?: names = [s]
        case .array(let items)? where !items.isEmpty && items.allSatisfy({ $0.stringValue != nil }):
            names = items.compactMap(\.stringValue)
        default:
            return failed(reply, .missingParameter("subscription"), advice: nil)
        }
        var patterns: [ChannelPattern] = []
        let identity = subscribing ? session.identity : nil
        for name in names {
            guard let pattern = ChannelPattern(name) else {
                return failed(reply, .invalidChannel(name), advice: nil)
            }
            if pattern.isMeta {
                return failed(reply, .forbiddenChannel(name), advice: nil)
            }
            // The channel options' `subscribe` and the token's `channels` claim: a subscription
            // must stay within both, wildcards included (checked against every channel they
            // could match). Unsubscribing is free.
            if subscribing, !pattern.isService, !maySubscribe(pattern, identity: identity) {
                limits.record(.channelPermission)
                return failed(reply, BayeuxError(code: 403, args: [name], message: "Subscription not allowed"), advice: nil)
            }
            // `/service/**` subscriptions succeed but are not recorded: service replies go to
            // the requester only (CometD behaves the same; CometD JS relies on it).
            if !pattern.isService { patterns.append(pattern) }
        }
        session.touch(expiresAt: expiry(clock.nowNanoseconds()))
        // `ext.herald.maxFrequency`: at most that many updates a second per channel.
        if let value = message.ext?["herald"]?.objectValue?["maxFrequency"] {
            guard subscribing, let frequency = value.doubleValue, frequency > 0, frequency <= 1_000 else {
                return failed(reply, BayeuxError(code: 400, args: ["maxFrequency"], message: "Invalid parameter"), advice: nil)
            }
            for pattern in patterns { session.setThrottle(pattern, interval: DeliveryPolicy.interval(frequency)) }
        } else if !subscribing {
            for pattern in patterns { session.setThrottle(pattern, interval: nil) }
        }
        // With replay asked for, go the catch-up way even when nothing is logged, so that the
        // request is refused plainly rather than ignored.
        if subscribing && (logsChannels || message.ext?["replay"] != nil || session.replayPositions != nil) {
            return subscribeWithCatchUp(message, reply: reply, patterns: patterns, session: session)
        }
        guard apply(patterns, to: session, subscribing: subscribing) else {
            if !session.isClosed { limits.record(.subscriptions) }
            return failed(reply, session.isClosed ? .unknownClient : .tooManySubscriptions(limit: configuration.maxSubscriptionsPerSession), advice: nil)
        }
        reply["successful"] = .bool(true)
        return reply
    }

    /// Subscribes and queues retained and replayed messages, under the logs lock (see
    /// `LogState`), so that they and the live messages after them have no gap and no duplicate.
    func subscribeWithCatchUp(_ message: BayeuxMessage, reply: JSONObject, patterns: [ChannelPattern], session: Session) -> JSONObject {
        var reply = reply
        let outcome: Result<(any SessionSink)?, ReplayRefusal> = logs.withLock { state in
            let plan: [String: ReplayPosition]
            do {
                plan = try replayPlan(patterns, message: message, session: session, state: &state)
            } catch let refusal as ReplayRefusal {
                return .failure(refusal)
            } catch {
                return .failure(ReplayRefusal(error: BayeuxError(code: 500, message: "\(error)"), ext: JSONObject()))
            }
            guard apply(patterns, to: session, subscribing: true) else {
                if !session.isClosed { limits.record(.subscriptions) }
                let error = session.isClosed ? BayeuxError.unknownClient : .tooManySubscriptions(limit: configuration.maxSubscriptionsPerSession)
                return .failure(ReplayRefusal(error: error, ext: JSONObject()))
            }
            session.useHandshakeReplayPositions(patterns.map(\.rawValue))
            var first: [String: UInt64] = [:]
            let messages = catchUp(patterns, plan: plan, state: &state, first: &first)
            var herald = JSONObject()
            if plan.values.contains(where: { $0 != .newOnly }) { herald["recovered"] = .bool(true) }
            if message.ext?["herald"]?.objectValue?["positions"]?.boolValue == true {
                herald["positions"] = .object(startPositions(patterns, first: first, state: &state))
            }
            if !herald.isEmpty { reply["ext"] = .object(JSONObject([("herald", .object(herald))])) }
            return .success(session.enqueueCatchUp(messages))
        }
        switch outcome {
        case .success(let notify):
            notify?.messagesAvailable(session)
            reply["successful"] = .bool(true)
            return reply
        case .failure(let refusal):
            var failedReply = failed(reply, refusal.error, advice: nil)
            if !refusal.ext.isEmpty { failedReply["ext"] = .object(refusal.ext) }
            return failedReply
        }
    }

    /// Who may publish or subscribe where no channel option says: anyone without tokens, and
    /// with tokens required, sessions that presented one.
    var defaultPermission: ChannelPermission {
        configuration.requiresAuthentication ? .authenticated : .anyone
    }

    /// Whether a session with `identity` (nil: anonymous) may subscribe to `pattern`: the
    /// `subscribe` option of every pattern that decides for a channel it could match, and the
    /// token's `channels` claim.
    func maySubscribe(_ pattern: ChannelPattern, identity: ClientIdentity?) -> Bool {
        if let identity, !identity.maySubscribe(pattern) { return false }
        return configuration.channels.subscribePermissions(for: pattern, default: defaultPermission).allSatisfy { $0.admits(identity) }
    }

    /// Adds or removes subscriptions; false if the session is closed or over its limit.
    func apply(_ patterns: [ChannelPattern], to session: Session, subscribing: Bool) -> Bool {
        let limit = configuration.maxSubscriptionsPerSession
        return session.state.withLock { s in
            if s.closed { return false }
            if subscribing {
                let added = patterns.filter { s.subscriptions[$0.rawValue] == nil }
                guard s.subscriptions.count + Set(added.map(\.rawValue)).count <= limit else { return false }
                index.withLock { idx in
                    for pattern in added where s.subscriptions.updateValue(pattern, forKey: pattern.rawValue) == nil {
                        idx.add(pattern, session)
                    }
                }
            } else {
                index.withLock { idx in
                    for pattern in patterns where s.subscriptions.removeValue(forKey: pattern.rawValue) != nil {
                        idx.remove(pattern, session)
                    }
                }
            }
            return true
        }
    }

    func disconnect(_ message: BayeuxMessage, session: Session?) -> JSONObject {
        var reply = baseReply(message)
        guard let session else {
            return failed(reply, .unknownClient, advice: nil)
        }
        reply["clientId"] = .string(session.id)
        removeSession(session, reason: .clientDisconnected)
        reply["successful"] = .bool(true)
        return reply
    }

    // MARK: Publish

    /// Publishes `message`. Returns nil when it succeeded (the caller writes the plain
    /// acknowledgement), or the failure reply.
    func publish(_ message: BayeuxMessage, channel raw: String, session: Session?, result: inout BatchResult) -> JSONObject? {
        guard let channel = ChannelName(raw) else {
            // Wildcards are for subscriptions only (Faye: 405).
            return failed(baseReply(message), .invalidChannel(raw), advice: nil)
        }
        if channel.isMeta {
            // Only the five exact meta channels are commands; `/meta/subscribe/x` is not one
            // (GHSA-qpg4-4w7w-2mq5).
            return failed(baseReply(message), .forbiddenChannel(raw), advice: nil)
        }
        guard let data = message.data else {
            return failed(baseReply(message), .missingParameter("data"), advice: nil)
        }
        if session == nil && !configuration.allowAnonymousPublish {
            return failed(baseReply(message), .unknownClient, advice: nil)
        }
        // Services answer the sender and broadcast nothing: `publish` is about broadcasts, and
        // `/**: {publish: server}` must not switch off every `/service` channel.
        if !channel.isService {
            let permission = configuration.channels.publishPermission(for: channel) ?? defaultPermission
            let identity = configuration.requiresAuthentication ? session?.identity : nil
            guard permission.admits(identity), identity?.mayPublish(channel) ?? true else {
                limits.record(.channelPermission)
                return failed(baseReply(message), BayeuxError(code: 403, args: [raw], message: "Publish not allowed"), advice: nil)
            }
        }
        // `ext.herald.retain: true` (`herald pub --retain`): the publisher means this to be the
        // channel's retained value. Retention is the channel's option, not the message's, so a
        // channel that does not retain refuses the publish rather than take it silently.
        if message.ext?["herald"]?.objectValue?["retain"]?.boolValue == true, configuration.channels.options(for: channel)?.retain != true {
            return failed(baseReply(message), BayeuxError(code: 400, args: [raw], message: "Channel does not retain messages"), advice: nil)
        }
        if let session {
            let now = clock.nowNanoseconds()
            guard session.touchForPublish(expiresAt: expiry(now), now: now, rate: configuration.maxPublishesPerSecondPerSession) else {
                limits.record(.publishRate)
                return failed(baseReply(message), BayeuxError(code: 429, args: [Limit.publishRate.rawValue], message: "Too many publishes"), advice: nil)
            }
        }
        if channel.isService {
            let handler = services.withLock { list in list.first(where: { $0.0.matches(channel) })?.1 }
            if let handler, let response = handler(ServiceRequest(channel: channel, data: data, session: session, id: message.id)), let session {
                var buffer = allocator.buffer(capacity: 64)
                buffer.writeJSON(response)
                deliver(Delivery(channel: channel, data: buffer), to: session)
            }
        } else {
            let outcome: PublishOutcome
            if acknowledgesAfterCommit(channel) {
                // For a durable channel the reply waits for the commit (see `CommitGate`).
                let gate = result.commitGate ?? CommitGate()
                let index = result.replies.count
                let failure = encode(failed(baseReply(message), .publishFailed("not committed to the message store"), advice: nil))
                gate.add()
                outcome = publish(Delivery(channel: channel, data: data)) { committed in
                    gate.complete(replyIndex: index, failure: committed ? nil : failure)
                }
                if outcome.awaitingCommit {
                    result.commitGate = gate
                } else {
                    gate.complete(replyIndex: index, failure: nil)
                }
            } else {
                outcome = publish(Delivery(channel: channel, data: data), onCommit: nil)
            }
            if let refusal = outcome.refusal {
                return failed(baseReply(message), refusal, advice: nil)
            }
        }
        return nil
    }

    /// `{"id":…,"channel":…,"successful":true}`, the reply to a publish that succeeded.
    func publishAcknowledgement(_ message: BayeuxMessage) -> JSONObject {
        var reply = baseReply(message)
        reply["successful"] = .bool(true)
        return reply
    }

    /// The same bytes as `encode(publishAcknowledgement(message))`, written directly: this is
    /// the most frequent reply of all. `channel` is a valid channel name (it was published to),
    /// so it needs no escaping.
    func encodePublishAcknowledgement(_ message: BayeuxMessage, channel: String) -> ByteBuffer {
        let tail: StaticString = "\",\"successful\":true}"
        var buffer = allocator.buffer(capacity: 48 + channel.utf8.count)
        switch message.id {
        case .number(let text)?:
            buffer.writePieces { out in
                out.append("{\"id\":")
                out.append(text)
                out.append(",\"channel\":\"")
                out.append(channel)
                out.append(tail)
            }
            return buffer
        case .string(let text)? where JSONValue.isPlainString(text):
            // Faye and CometD send string ids: "1", "2", …
            buffer.writePieces { out in
                out.append("{\"id\":\"")
                out.append(text)
                out.append("\",\"channel\":\"")
                out.append(channel)
                out.append(tail)
            }
            return buffer
        case let id?:
            buffer.writeStaticString("{\"id\":")
            buffer.writeJSON(id)
            buffer.writeStaticString(",")
        case nil:
            buffer.writeStaticString("{")
        }
        buffer.writePieces { out in
            out.append("\"channel\":\"")
            out.append(channel)
            out.append(tail)
        }
        return buffer
    }

    // MARK: Replies

    /// `{"id":…,"channel":…}`: every reply echoes the request's `id` verbatim and its channel.
    func baseReply(_ message: BayeuxMessage) -> JSONObject {
        // id, channel, successful, and clientId, error or advice: one allocation.
        var reply = JSONObject(capacity: 5)
        if let id = message.id { reply["id"] = id }
        if let channel = message.channel { reply["channel"] = .string(channel) }
        return reply
    }

    func failed(_ reply: JSONObject, _ error: BayeuxError, advice: Advice?) -> JSONObject {
        var reply = reply
        reply["successful"] = .bool(false)
        reply["error"] = .string(error.description)
        if let advice { reply["advice"] = advice.json }
        return reply
    }

    func errorReply(_ message: BayeuxMessage, _ error: BayeuxError, session: Session? = nil) -> JSONObject {
        var reply = baseReply(message)
        if let subscription = message.subscription { reply["subscription"] = subscription }
        if let session { reply["clientId"] = .string(session.id) }
        return failed(reply, error, advice: nil)
    }

    func failedWithClient(_ message: BayeuxMessage, _ error: BayeuxError, session: Session) -> JSONObject {
        var reply = baseReply(message)
        reply["clientId"] = .string(session.id)
        return failed(reply, error, advice: .handshake)
    }

    /// The reply to a held `/meta/connect`, through the outgoing extensions.
    func connectReply(_ request: BayeuxMessage, session: Session, advice: Advice, error: BayeuxError?) -> ByteBuffer {
        var reply = JSONObject()
        if let id = request.id { reply["id"] = id }
        reply["channel"] = .string(MetaChannel.connect.rawValue)
        reply["clientId"] = .string(session.id)
        reply["successful"] = .bool(error == nil)
        if let error { reply["error"] = .string(error.description) }
        reply["advice"] = advice.json
        for ext in extensions.withLock({ $0 }) { ext.outgoingReply(&reply, request: request, session: session) }
        return encode(reply)
    }

    func encode(_ reply: JSONObject) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 128)
        buffer.writeJSON(reply)
        return buffer
    }
}
