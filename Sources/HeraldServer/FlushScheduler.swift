import NIOCore

/// Coalesces "this connection has messages" notifications per event loop: every connection
/// notified during one loop tick is flushed once, by a single task, after the tick's reads are
/// processed. One publish burst thus costs each subscriber one frame and one `write`.
final class FlushScheduler: Sendable {
    let eventLoop: any EventLoop
    private let pending: NIOLoopBoundBox<[WebSocketConnection]>
    private let scheduled: NIOLoopBoundBox<Bool>
    /// The frames of one run, kept for their capacity.
    private let frames: NIOLoopBoundBox<[(WebSocketHandler, ByteBuffer)]>

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.pending = .makeBoxSendingValue([], eventLoop: eventLoop)
        self.scheduled = .makeBoxSendingValue(false, eventLoop: eventLoop)
        self.frames = .makeBoxSendingValue([], eventLoop: eventLoop)
    }

    func schedule(_ connection: WebSocketConnection) {
        if eventLoop.inEventLoop {
            enqueue(connection)
        } else {
            eventLoop.execute { self.enqueue(connection) }
        }
    }

    private func enqueue(_ connection: WebSocketConnection) {
        pending.value.append(connection)
        if !scheduled.value {
            scheduled.value = true
            eventLoop.execute { self.run() }
        }
    }

    private func run() {
        scheduled.value = false
        var batch: [WebSocketConnection] = []
        swap(&batch, &pending.value)
        // Two passes: drain and frame everything, then write back to back. The writes of a
        // tick then follow each other closely, which keeps the readers' wake-ups down.
        var ready: [(WebSocketHandler, ByteBuffer)] = []
        swap(&ready, &frames.value)
        for connection in batch {
            let handler = connection.handler.value
            if let frame = handler.takeFrame() { ready.append((handler, frame)) }
        }
        for (handler, frame) in ready { handler.send(frame) }
        ready.removeAll(keepingCapacity: true)
        swap(&ready, &frames.value)
        if pending.value.isEmpty {
            batch.removeAll(keepingCapacity: true)
            swap(&batch, &pending.value)
        }
    }
}
