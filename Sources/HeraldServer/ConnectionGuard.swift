import HeraldCore
import Logging
import NIOCore

/// First in every connection's pipeline: bounds what a client that does not read can make
/// the server hold for it. Replies, pongs and HTTP responses are written whatever the socket's
/// state, so without it a client that sends and never reads grows the server's memory without
/// bound (one probe took RSS from 72 to 322 MB with a million pings).
///
/// - While the socket is not writable (more than the high-water mark waits to be sent), it
///   holds back reads, as NIO's `BackPressureHandler` does: the client gets its requests read
///   again once it has read enough of what was sent. So what waits is at most the mark plus
///   the replies to one read burst.
/// - When the replies to one read burst add more than `maxOutboundBufferBytes` to what waits
///   (tiny requests with long replies), it closes the connection at once. WebSocket
///   deliveries are written by the flush task, outside read bursts, so they do not count.
/// - A connection that stays unwritable for `writeStallTimeoutSeconds` is closed: its peer has
///   stopped reading (a close frame that cannot be written is covered too).
///
/// Deliveries are not bounded here: they wait in the session's queue, bounded in bytes, and
/// are written only while the socket is writable.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler, TickedConnection {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private let maxOutboundBytes: Int
    private let stallTimeout: TimeAmount
    private let ticker: ConnectionTicker
    private let limits: LimitCounters
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var writable = true
    private var pendingRead = false
    /// Bytes waiting to be sent when the current read burst began; nil between bursts.
    private var burstStart: Int?
    /// Reads that arrived after the socket became unwritable, in the same burst: they wait
    /// here, unprocessed, until it drains. Without this a burst of 16 reads of pipelined
    /// requests is answered in full before anything is checked, and a client that never
    /// reads keeps the event loop busy for every other connection on it.
    private var heldInbound: [NIOAny] = []
    private var heldBytes = 0
    /// When the socket last became unwritable, while it is.
    private var unwritableSince: NIODeadline?

    init(maxOutboundBytes: Int, stallTimeout: TimeAmount, ticker: ConnectionTicker, limits: LimitCounters, logger: Logger) {
        self.maxOutboundBytes = maxOutboundBytes
        self.stallTimeout = stallTimeout
        self.ticker = ticker
        self.limits = limits
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker.remove(self)
        self.context = nil
    }

    func read(context: ChannelHandlerContext) {
        if writable, heldInbound.isEmpty {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if burstStart == nil { burstStart = bufferedBytes(context) }
        guard writable, heldInbound.isEmpty else {
            heldBytes += unwrapInboundIn(data).readableBytes
            heldInbound.append(data)
            return
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The handlers behind write and flush their replies here: look after they did.
        context.fireChannelReadComplete()
        let start = burstStart
        burstStart = nil
        if !writable, let start { checkOutbound(context: context, since: start) }
    }

    /// Hands the held reads on while the socket stays writable, then reads again.
    private func releaseHeld(context: ChannelHandlerContext) {
        guard !heldInbound.isEmpty else { return }
        burstStart = bufferedBytes(context)
        while writable, !heldInbound.isEmpty {
            let data = heldInbound.removeFirst()
            heldBytes -= unwrapInboundIn(data).readableBytes
            context.fireChannelRead(data)
        }
        channelReadComplete(context: context)
    }

    private func bufferedBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable {
            unwritableSince = nil
            ticker.remove(self)
        } else if unwritableSince == nil {
            unwritableSince = .now()
            ticker.add(self)
        }
        context.fireChannelWritabilityChanged()
        // Writable again: what was held goes on first (it may fill the socket again), then
        // reading resumes.
        guard writable else { return }
        releaseHeld(context: context)
        if writable, heldInbound.isEmpty, pendingRead {
            pendingRead = false
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ticker.remove(self)
        heldInbound = []
        heldBytes = 0
        context.fireChannelInactive()
    }

    private func checkOutbound(context: ChannelHandlerContext, since start: Int) {
        let waiting = bufferedBytes(context)
        guard waiting - start > maxOutboundBytes || heldBytes > maxOutboundBytes else { return }
        limits.record(.outboundBytes)
        logger.debug("closing a connection that does not read its replies", metadata: ["outbound.bytes": "\(waiting)", "limit": "\(maxOutboundBytes)"])
        context.close(promise: nil)
    }

    func tick(now: NIODeadline) {
        guard let context, let since = unwritableSince, now - since >= stallTimeout else { return }
        ticker.remove(self)
        limits.record(.writeStall)
        logger.debug("closing a connection that stopped reading", metadata: ["stalled.seconds": "\((now - since).nanoseconds / 1_000_000_000)"])
        context.close(promise: nil)
    }

    func quiesce() {}
}
