import HeraldCore
import NIOCore

/// The `BayeuxConnection` of one HTTP request: it receives the reply to the request's held
/// `/meta/connect`, together with the events queued for the session.
final class LongPollResponder: BayeuxConnection {
    let eventLoop: any EventLoop
    let handler: NIOLoopBound<HTTPHandler>
    let broker: Broker
    /// Which request of the connection this responder answers (keep-alive reuses handlers):
    /// its `TransportStateMachine.exchange`.
    let exchange: Int
    let remoteAddress: SocketAddress?

    init(handler: HTTPHandler, eventLoop: any EventLoop, broker: Broker, exchange: Int, remoteAddress: SocketAddress?) {
        self.eventLoop = eventLoop
        self.remoteAddress = remoteAddress
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.broker = broker
        self.exchange = exchange
    }

    /// Events arrived: end the hold. Hopping to the loop first lets a burst of publishes in
    /// the same tick go out in one response.
    func messagesAvailable(_ session: Session) {
        eventLoop.execute { self.broker.releaseHeldConnect(for: session, heldBy: self) }
    }

    func sessionClosed(_ session: Session, reason: CloseReason) {}

    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer]) {
        let exchange = self.exchange
        if eventLoop.inEventLoop {
            handler.value.heldConnectAnswered(exchange: exchange, messages: [reply] + events)
        } else {
            eventLoop.execute { self.handler.value.heldConnectAnswered(exchange: exchange, messages: [reply] + events) }
        }
    }
}
