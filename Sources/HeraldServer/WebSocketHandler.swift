import HeraldCore
import HeraldProtocol
import Logging
import NIOCore
import NIOWebSocket

/// Bayeux over one WebSocket (bayeux-notes §3.4).
///
/// ```
///  socket ─→ [TLS] ─→ WebSocketHandler (WebSocketFrameReader) ─→ Broker.process
///                          │  ↑ replies, one frame per read burst
///  socket ←─ [TLS] ←───────┘  └ pushed events, one frame per connection per flush
/// ```
///
/// The handler writes finished frames (header included, see `prependWebSocketHeader`) through
/// its own context, so whatever sits in front of it in the pipeline, such as a TLS handler,
/// sees every byte. NIO's `WebSocketFrameEncoder` is not used.
///
/// Replies to the messages of one incoming frame go out together as one array frame; a held
/// `/meta/connect` is answered in a frame of its own when it ends. Events are pushed as soon
/// as they are queued, batched per event-loop tick. When the socket is not writable, events
/// wait in the session's bounded queue.
final class WebSocketHandler: ChannelInboundHandler, TickedConnection {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let broker: Broker
    let configuration: ServerConfiguration
    let logger: Logger
    let scheduler: FlushScheduler
    let traffic: TrafficCounters
    let keepaliveTimer: ConnectionTicker
    private var context: ChannelHandlerContext?
    private(set) var connection: WebSocketConnection!
    /// The session this socket carries and its held connect (`TransportStateMachine`).
    private var state = TransportStateMachine(kind: .push)
    private var heldTimer = HeldConnectTimer()
    private var silentPingIntervals = 0
    /// The replies of this read burst, as one array frame in the making (`[r1,r2,…` with room
    /// for the frame header in front), written at `channelReadComplete`: one frame and one
    /// `write` for all the replies of a burst, not one per incoming frame.
    private var pendingReplies: ByteBuffer?
    private var closing = false
    /// The channel's writability, as last reported by `channelWritabilityChanged`: read on
    /// every flush, and the channel's own property costs a pipeline hop and a cache miss.
    private var writable = true
    private var allocator = ByteBufferAllocator()
    private var reader: WebSocketFrameReader
    let handshakes: HandshakeLimiter
    private var handshakeBucket: TokenBucket
    /// Asked by the broker for each handshake of a batch: made once, not per batch.
    private var admitHandshake: (() -> Limit?)?
    /// Keepalive ticks since `close` sent its close frame: the connection is closed outright
    /// on the second, whether or not the peer read the frame.
    private var ticksSinceClose = 0
    /// The client's address: the peer's, or the one a trusted proxy forwarded on the upgrade.
    private let clientAddress: SocketAddress?
    /// The upgrade request's bearer token, for a handshake that carries none in `ext`, and to
    /// show that a session handshaken elsewhere is this client's (`SessionBinding`).
    var upgradeBearer: String?
    /// `upgradeBearer`, verified: once per connection, on the first batch that needs it.
    private var upgradeCredential: HandshakeCredential?
    /// What this connection shows about its client (`ClientProof`): its number, and the
    /// upgrade's `BAYEUX_BROWSER` cookie, or the one the `101` sets.
    var proof = ClientProof(connection: ConnectionNumbers.take())
    /// A `BAYEUX_BROWSER` cookie for the `101` to set: tokens are required and the upgrade
    /// carried none.
    var newBrowserCookie: String?
    /// A handshake's token is being verified: frames wait in `reader` until it is done.
    private var verifying = false

    init(broker: Broker, configuration: ServerConfiguration, scheduler: FlushScheduler, keepalive: ConnectionTicker, traffic: TrafficCounters, handshakes: HandshakeLimiter, clientAddress: SocketAddress?, logger: Logger) {
        self.clientAddress = clientAddress
        self.traffic = traffic
        self.handshakes = handshakes
        self.handshakeBucket = handshakes.connectionBucket()
        self.broker = broker
        self.configuration = configuration
        self.scheduler = scheduler
        self.keepaliveTimer = keepalive
        self.logger = logger
        self.reader = WebSocketFrameReader(maxMessageBytes: broker.configuration.maxBatchBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
        self.writable = context.channel.isWritable
        self.connection = WebSocketConnection(handler: self, eventLoop: context.eventLoop, scheduler: scheduler, remoteAddress: clientAddress)
        let client = clientAddress
        admitHandshake = { [unowned self] in handshakes.admit(from: client, connection: &handshakeBucket) }
        keepaliveTimer.add(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cleanUp()
        connection.detach()
        admitHandshake = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        cleanUp()
        context.fireChannelInactive()
    }

    private func cleanUp() {
        keepaliveTimer.remove(self)
        perform(state.connectionClosed())
    }

    /// Carries out what the state machine decided.
    private func perform(_ actions: TransportStateMachine.Actions) {
        heldTimer.apply(actions, broker: broker, eventLoop: context?.eventLoop)
        // The broker answers through `heldConnectAnswered`, before this returns.
        if let held = actions.answerHeldConnect { broker.timeoutHeldConnect(held) }
        switch actions.output {
        case .nothing:
            break
        case .send(let messages):
            // Into this read burst's reply frame, written at its end.
            if !closing { appendReplies(messages) }
        case .sendAlone(let messages):
            writeMessages(messages)
        case .sendWhenCommitted(let gate, let awaiting):
            // Durable publishes: the replies wait for the commit, and go in a frame of their own.
            let connection = self.connection!
            gate.whenCommitted { replacements in
                connection.eventLoop.execute { connection.handler?.committed(awaiting, replacements: replacements) }
            }
        }
        if actions.closeForShutdown { close(code: .goingAway, reason: CloseReason.goingAway.name) }
    }

    /// The durable publishes of a batch were committed.
    func committed(_ awaiting: TransportStateMachine.AwaitingCommit, replacements: [Int: ByteBuffer]) {
        perform(state.committed(awaiting, replacements: replacements))
    }

    /// The broker answered a held connect of this socket.
    func heldConnectAnswered(_ messages: [ByteBuffer]) {
        perform(state.heldConnectAnswered(exchange: nil, messages: messages))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        silentPingIntervals = 0
        let bytes = unwrapInboundIn(data)
        traffic.received.add(bytes.readableBytes, ordering: .relaxed)
        reader.append(bytes)
        drainFrames()
    }

    /// Handles the complete frames read so far, until a token verification pauses them.
    private func drainFrames() {
        do {
            while !closing, !verifying, let message = try reader.next(allocator: allocator) {
                handle(message)
            }
        } catch {
            switch error {
            case .tooLarge:
                broker.limits.record(.batchBytes)
                close(code: .messageTooLarge, reason: "message larger than \(broker.configuration.maxBatchBytes) bytes")
            case .tooManyFragments:
                broker.limits.record(.batchBytes)
                close(code: .messageTooLarge, reason: "message in more than \(reader.maxFragments) fragments")
            case .protocolError(let detail):
                close(code: .protocolError, reason: detail)
            }
        }
    }

    private func handle(_ message: WebSocketFrameReader.Message) {
        switch message {
        case .text(let payload):
            handleText(payload)
        case .binary:
            close(code: .unacceptableData, reason: "binary frames are not Bayeux")
        case .ping(let payload):
            writeFrame(opcode: 0xA, payload: payload)
        case .pong:
            break
        case .close(let data):
            switch Self.closeReply(to: data) {
            case .success(let code):
                // RFC 6455 §5.5.1: echo the client's status code (1000 if it sent none).
                close(code: WebSocketErrorCode(codeNumber: Int(code)), reason: "")
            case .failure(let violation):
                close(code: violation.code, reason: violation.reason)
            }
        }
    }

    struct CloseViolation: Error {
        let code: WebSocketErrorCode
        let reason: String
    }

    /// The code to answer a client's close frame with, or why the frame is invalid
    /// (RFC 6455 §5.5.1, §7.4): a 1-byte payload or a code no endpoint may send (below 1000,
    /// 1004–1006, 1015, 1016–2999, 5000 and up) is a protocol error, a reason that is not
    /// UTF-8 is invalid data. 1012–1014 are registered with IANA and are echoed.
    static func closeReply(to payload: ByteBuffer) -> Result<UInt16, CloseViolation> {
        var payload = payload
        guard payload.readableBytes > 0 else { return .success(1000) }
        guard let code = payload.readInteger(as: UInt16.self) else {
            return .failure(CloseViolation(code: .protocolError, reason: "close frame with a 1-byte payload"))
        }
        let sendable = (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code)
        guard sendable else {
            return .failure(CloseViolation(code: .protocolError, reason: "invalid close code \(code)"))
        }
        guard String(validating: payload.readableBytesView, as: UTF8.self) != nil else {
            return .failure(CloseViolation(code: .dataInconsistentWithMessage, reason: "close reason is not UTF-8"))
        }
        return .success(code)
    }

    /// Sends the upgrade's `101` response, before any frame. After an upgrade on a later
    /// keep-alive request, bytes that came right behind it reach this handler from a task NIO
    /// queues when the HTTP decoder leaves the pipeline, outside any read burst; the task
    /// queued here, after it, flushes their replies.
    func upgraded(accept: String) {
        guard let context else { return }
        let setCookie = newBrowserCookie.map { BrowserCookie.setCookie($0, secure: configuration.tls != nil) }
        context.writeAndFlush(NIOAny(WebSocketHandshake.switchingProtocols(accept: accept, setCookie: setCookie, allocator: context.channel.allocator)), promise: nil)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { bound.value.flushReplies() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushReplies()
        context.fireChannelReadComplete()
    }

    /// Writes and flushes the replies of a read burst, once.
    private func flushReplies() {
        guard pendingReplies != nil else { return }
        emitPendingReplies()
        context?.flush()
    }

    /// Adds encoded messages to the burst's reply frame.
    private func appendReplies(_ messages: [ByteBuffer]) {
        for message in messages {
            if pendingReplies == nil {
                var frame = allocator.buffer(capacity: FrameBuilder.headroom + 2 + max(message.readableBytes, 254))
                frame.moveWriterIndex(forwardBy: FrameBuilder.headroom)
                frame.moveReaderIndex(forwardBy: FrameBuilder.headroom)
                frame.writeInteger(UInt8(ascii: "["))
                pendingReplies = frame
            } else {
                pendingReplies!.writeInteger(UInt8(ascii: ","))
            }
            pendingReplies!.writeImmutableBuffer(message)
        }
    }

    /// Writes the burst's reply frame, unflushed, ahead of anything else written now.
    private func emitPendingReplies() {
        guard var frame = pendingReplies else { return }
        pendingReplies = nil
        frame.writeInteger(UInt8(ascii: "]"))
        frame.prependWebSocketHeader(opcode: 0x1)
        traffic.sent.add(frame.readableBytes, ordering: .relaxed)
        context?.write(NIOAny(frame), promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("websocket error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Bayeux

    private func handleText(_ payload: ByteBuffer) {
        guard !closing, !state.isQuiescing else { return }
        let messages: [BayeuxMessage]
        do {
            messages = try MessageCodec.decodeBatch(payload, maxMessages: broker.configuration.maxMessagesPerBatch)
        } catch {
            switch error {
            case .invalidJSON(let detail):
                close(code: .dataInconsistentWithMessage, reason: String(detail.description.prefix(100)))
            case .wrongShape(let detail):
                // Valid JSON but not Bayeux messages: no reply could name a channel, so close
                // as for invalid JSON (CometD closes too).
                close(code: .dataInconsistentWithMessage, reason: detail)
            case .tooManyMessages:
                broker.limits.record(.batchMessages)
                close(code: .messageTooLarge, reason: error.description)
            }
            return
        }
        if messages.isEmpty { return }
        guard let verifier = configuration.tokenVerifier, let context else {
            process(messages, credential: .absent)
            return
        }
        // The batch's own token, else the upgrade's bearer token, verified once per connection.
        let token = TokenVerifier.token(in: messages, bearer: nil)
        if token == nil, upgradeBearer == nil || upgradeCredential != nil {
            let now = broker.clock.nowMillisecondsSince1970()
            process(messages, credential: upgradeCredential.map { TokenVerifier.current($0, nowMilliseconds: now) } ?? .absent)
            return
        }
        // Verification is asynchronous: the frames behind this one wait in `reader`, so the
        // batches are still processed in order.
        guard let text = token ?? upgradeBearer else { return }
        verifying = true
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let isUpgradeBearer = token == nil
        Task {
            let credential = await verifier.verify(text)
            loop.execute { bound.value.verified(messages, credential: credential, isUpgradeBearer: isUpgradeBearer) }
        }
    }

    private func verified(_ messages: [BayeuxMessage], credential: HandshakeCredential, isUpgradeBearer: Bool) {
        verifying = false
        if isUpgradeBearer { upgradeCredential = credential }
        guard context != nil, !closing else { return }
        process(messages, credential: credential)
        drainFrames()
        flushReplies()
    }

    private func process(_ messages: [BayeuxMessage], credential: HandshakeCredential) {
        let result = broker.process(messages, type: .websocket, connection: connection, admitHandshake: admitHandshake, credential: credential, proof: proof)
        perform(state.batchProcessed(result, connection: connection))
    }

    /// Writes encoded messages as one array frame.
    func writeMessages(_ messages: [ByteBuffer]) {
        guard context != nil, !closing, !messages.isEmpty else { return }
        writeFrame(opcode: 0x1, payload: FrameBuilder.array(messages, allocator: allocator, headroom: FrameBuilder.headroom))
    }

    /// Drains the bound session's queue into one frame, if the socket can take it.
    func flush() {
        if let (context, frame, queuedSince) = takeFrame() {
            traffic.sent.add(frame.readableBytes, ordering: .relaxed)
            context.writeAndFlush(NIOAny(frame), promise: nil)
            broker.observeDeliveryLatency(since: queuedSince)
        }
    }

    /// Drains the bound session's queue into one text frame, header included, if the socket
    /// can take it, and returns it with the context to write it through. `FlushScheduler` takes
    /// the frames of every connection first and then writes them back to back, so the `write`s
    /// of one tick are not interleaved with draining and framing. Replies still waiting in this
    /// read burst's frame are written (unflushed) first, to keep them ahead of the events.
    /// Also returns when the oldest message in it was published (0 if unknown).
    func takeFrame() -> (ChannelHandlerContext, ByteBuffer, queuedSince: UInt64)? {
        guard let context, let session = state.session, !closing else { return nil }
        guard writable else {
            // The socket is full: messages wait in the session's queue, where conflating
            // channels keep only their latest; `channelWritabilityChanged` flushes again.
            session.markCongested()
            return nil
        }
        var payload: ByteBuffer?
        var since: UInt64 = 0
        let allocator = self.allocator
        session.drain(for: connection) { queue, bytes, queuedSince in
            since = queuedSince
            if queue.count == 1, let frame = SingleMessageFrame.frame(around: queue[0]) {
                // The usual case: one message, encoded once for all subscribers with its frame.
                payload = frame
            } else {
                // The header goes in while `frame` is the only reference to the new buffer: once
                // `payload` holds it too, writing the header copies the whole batch.
                var frame = FrameBuilder.array(queue, count: queue.count, bytes: bytes, allocator: allocator, headroom: FrameBuilder.headroom)
                frame.prependWebSocketHeader(opcode: 0x1)
                payload = frame
            }
        }
        guard let payload else { return nil }
        emitPendingReplies()
        return (context, payload, since)
    }

    func sessionClosed(_ closed: Session, reason: CloseReason) {
        guard state.sessionClosed(closed) else { return }
        close(code: .init(codeNumber: Int(reason.code)), reason: reason.name)
    }

    func tick(now: NIODeadline) { keepalive() }

    /// Answers a held connect with `reconnect: retry`, and closes with 1001 (going away) once
    /// no publish acknowledgement waits for a commit. New messages from the client are not
    /// processed any more.
    func quiesce() {
        perform(state.quiesce())
    }

    /// Called by `keepaliveTimer` every ping interval.
    func keepalive() {
        guard let context else { return }
        if closing {
            // A peer that reads nothing never takes the close frame, and its write never ends.
            ticksSinceClose += 1
            if ticksSinceClose >= 2 { context.close(promise: nil) }
            return
        }
        // Any frame resets the count, so a busy socket is never pinged: the first tick after
        // activity only starts counting; the next silent ones ping; the fourth closes.
        silentPingIntervals += 1
        if silentPingIntervals >= 4 {
            close(code: .goingAway, reason: "ping timeout")
        } else if silentPingIntervals >= 2 {
            writeFrame(opcode: 0x9, payload: ByteBuffer())
        }
    }

    /// Writes one unmasked frame (replies, pings, close), header in the payload's headroom, and
    /// flushes unless told not to. `payload` is consumed: a copy held by the caller would make
    /// writing the header copy the whole payload.
    func writeFrame(opcode: UInt8, payload: consuming ByteBuffer, flush: Bool = true, promise: EventLoopPromise<Void>? = nil) {
        guard let writer = context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        emitPendingReplies()
        payload.prependWebSocketHeader(opcode: opcode)
        traffic.sent.add(payload.readableBytes, ordering: .relaxed)
        if flush {
            writer.writeAndFlush(NIOAny(payload), promise: promise)
        } else {
            writer.write(NIOAny(payload), promise: promise)
        }
    }

    /// Sends a close frame (RFC 6455 §5.5.1) and closes the connection once it is written.
    func close(code: WebSocketErrorCode, reason: String) {
        guard let context, !closing else { return }
        closing = true
        var data = allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(String(reason.utf8.prefix(120)) ?? "")
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let written = context.eventLoop.makePromise(of: Void.self)
        writeFrame(opcode: 0x8, payload: data, promise: written)
        written.futureResult.whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }
}
