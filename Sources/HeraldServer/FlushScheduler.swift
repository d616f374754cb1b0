import NIOCore

/// Coalesces "this connection has messages" notifications per event loop: every connection
/// notified during one loop tick is flushed once, by a single task, after the tick's reads are
/// processed. One publish burst thus costs each subscriber one frame and one `write`.
final class FlushScheduler: Sendable {
    let eventLoop: any EventLoop
    private let pending: NIOLoopBoundBox<[WebSocketHandler]>
    private let scheduled: NIOLoopBoundBox<Bool>

    /// A connection's batch, framed, waiting for the second pass, with the context it is
    /// written through: the second pass does not touch the handlers again.
    private struct Frame {
        let writer: Writer
        let bytes: ByteBuffer
    }

    /// Where a connection's frames are written.
    enum Writer {
        /// The channel's core, as NIO's head handler writes (`write0`, `flush0`). Used while
        /// `RawFrameWriter` is the first handler, so that nothing is skipped; each delivery
        /// then leaves out the walk through two handler contexts and the pipeline, each a
        /// cache miss when the connections are many.
        case core(any ChannelCore)
        /// The context of `RawFrameWriter`.
        case context(ChannelHandlerContext)

        /// Writes and flushes `bytes`, on the event loop.
        func writeAndFlush(_ bytes: ByteBuffer) {
            switch self {
            case .core(let core):
                core.write0(NIOAny(bytes), promise: nil)
                core.flush0()
            case .context(let context):
                context.writeAndFlush(NIOAny(bytes), promise: nil)
            }
        }
    }

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
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
        for handler in batch {
            if let (writer, bytes) = handler.takeFrame() { frames.append(Frame(writer: writer, bytes: bytes)) }
        }
        for frame in frames { frame.writer.writeAndFlush(frame.bytes) }
    }
}
