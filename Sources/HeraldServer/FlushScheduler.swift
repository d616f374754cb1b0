import NIOCore

/// Coalesces "this connection has messages" notifications per event loop: every connection
/// notified during one loop tick is flushed once, by a single task, after the tick's reads are
/// processed. One publish burst thus costs each subscriber one frame and one `write`.
final class FlushScheduler: Sendable {
    let eventLoop: any EventLoop
    private let pending: NIOLoopBoundBox<[WebSocketConnection]>
    private let scheduled: NIOLoopBoundBox<Bool>

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.pending = .makeBoxSendingValue([], eventLoop: eventLoop)
        self.scheduled = .makeBoxSendingValue(false, eventLoop: eventLoop)
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
        for connection in batch { connection.flushOnLoop() }
        if pending.value.isEmpty {
            batch.removeAll(keepingCapacity: true)
            swap(&batch, &pending.value)
        }
    }
}
