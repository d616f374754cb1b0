import HeraldCore
import NIOCore

/// The `SessionSink` of one WebSocket connection: the thread-safe face of its
/// `WebSocketHandler`, which lives on the connection's event loop.
final class WebSocketConnection: BayeuxConnection {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<WebSocketHandler>
    let scheduler: FlushScheduler

    init(handler: WebSocketHandler, eventLoop: any EventLoop, scheduler: FlushScheduler) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.scheduler = scheduler
    }

    func messagesAvailable(_ session: Session) {
        scheduler.schedule(self)
    }

    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer]) {
        if eventLoop.inEventLoop {
            handler.value.writeMessages([reply] + events)
        } else {
            eventLoop.execute { self.handler.value.writeMessages([reply] + events) }
        }
    }

    func sessionClosed(_ session: Session, reason: CloseReason) {
        eventLoop.execute {
            self.handler.value.sessionClosed(session, reason: reason)
        }
    }
}
