import HeraldCore
import NIOCore

/// Coalesces "this connection has messages" notifications per event loop: every connection
/// notified during one loop tick is flushed once, by a single task, after the tick's reads are
/// processed. One publish burst thus costs each subscriber one frame and one `write`.
final class FlushScheduler: Sendable {
    let eventLoop: any EventLoop
    let traffic: TrafficCounters
    let broker: Broker
    private let pending: NIOLoopBoundBox<[WebSocketHandler]>
    private let scheduled: NIOLoopBoundBox<Bool>

    /// A connection's batch, framed, waiting for the second pass, with the context of the
    /// handler that writes it: the second pass does not touch the handlers again.
    private struct Frame {
        let context: ChannelHandlerContext
        let bytes: ByteBuffer
    }

    init(eventLoop: any EventLoop, traffic: TrafficCounters, broker: Broker) {
        self.eventLoop = eventLoop
        self.traffic = traffic
        self.broker = broker
        self.pending = .makeBoxSendingValue([], eventLoop: eventLoop)
        self.scheduled = .makeBoxSendingValue(false, eventLoop: eventLoop)
    }

    /// On the event loop: `handler` has messages to send.
    func schedule(_ handler: WebSocketHandler) {
        pending.value.append(handler)
        if !scheduled.value {
            scheduled.value = true
            eventLoop.execute { self.run() }
        }
    }

    private func run() {
        scheduled.value = false
        var batch: [WebSocketHandler] = []
        swap(&batch, &pending.value)
        pending.value.reserveCapacity(batch.count)
        // Two passes: drain and frame everything, then write back to back. The writes of a
        // tick then follow each other closely, which keeps the readers' wake-ups down. (Fresh
        // arrays per tick: emptying one in place for reuse cost more, per element, than the
        // one allocation.)
        var frames: [Frame] = []
        frames.reserveCapacity(batch.count)
        // The oldest message of the pass, for the publish-to-delivery latency (one sample per
        // pass: the worst wait in it, at the cost of one clock read).
        var oldest = UInt64.max
        for handler in batch {
            if let (context, bytes, queuedSince) = handler.takeFrame() {
                frames.append(Frame(context: context, bytes: bytes))
                if queuedSince > 0, queuedSince < oldest { oldest = queuedSince }
            }
        }
        var bytes = 0
        for frame in frames {
            bytes += frame.bytes.readableBytes
            frame.context.writeAndFlush(NIOAny(frame.bytes), promise: nil)
        }
        if bytes > 0 { traffic.sent.add(bytes, ordering: .relaxed) }
        if oldest != .max { broker.observeDeliveryLatency(since: oldest) }
    }
}
