import HeraldCore
import NIOCore

/// The `SessionSink` of one WebSocket connection: the thread-safe face of its
/// `WebSocketHandler`, which lives on the connection's event loop.
///
/// The handler holds its connection, and the connection holds the handler only until the
/// channel goes away (`detach()`), so that neither outlives it. Sessions may still hold the
/// connection for a moment after that; calls then find no handler and do nothing.
final class WebSocketConnection: BayeuxConnection, @unchecked Sendable {
    let eventLoop: any EventLoop
    let scheduler: FlushScheduler
    let remoteAddress: SocketAddress?
    /// Read and written on `eventLoop` only (checked by every caller): the `@unchecked` above.
    private var _handler: WebSocketHandler?

    init(handler: WebSocketHandler, eventLoop: any EventLoop, scheduler: FlushScheduler, remoteAddress: SocketAddress?) {
        self.eventLoop = eventLoop
        self.remoteAddress = remoteAddress
        self._handler = handler
        self.scheduler = scheduler
    }

    /// The handler, on the event loop; nil once the channel is gone.
    var handler: WebSocketHandler? {
        eventLoop.preconditionInEventLoop()
        return _handler
    }

    /// On the event loop, when the handler leaves the pipeline.
    func detach() {
        eventLoop.preconditionInEventLoop()
        _handler = nil
    }

    func messagesAvailable(_ session: Session) {
        if eventLoop.inEventLoop {
            // The usual case (a publish on this loop): one thread check, not two.
            if let handler = _handler { scheduler.schedule(handler) }
        } else {
            eventLoop.execute { if let handler = self._handler { self.scheduler.schedule(handler) } }
        }
    }

    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer]) {
        if eventLoop.inEventLoop {
            _handler?.heldConnectAnswered([reply] + events)
        } else {
            eventLoop.execute { self._handler?.heldConnectAnswered([reply] + events) }
        }
    }

    func sessionClosed(_ session: Session, reason: CloseReason) {
        eventLoop.execute {
            self._handler?.sessionClosed(session, reason: reason)
        }
    }
}
