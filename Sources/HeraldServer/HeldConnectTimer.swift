import HeraldCore
import NIOCore

/// The held `/meta/connect`'s timer of one connection, and the rest of a
/// `TransportStateMachine.Actions` that every transport carries out alike: detaching a session
/// and starting or cancelling the timer. What to send is left to the transport.
struct HeldConnectTimer {
    private var scheduled: Scheduled<Void>?

    /// Detaches, then cancels and starts the timer, as `actions` say. On the event loop;
    /// `eventLoop` is nil once the handler has left the pipeline, when no timer can start.
    mutating func apply(_ actions: TransportStateMachine.Actions, broker: Broker, eventLoop: (any EventLoop)?) {
        if let (session, connection) = actions.detach { broker.detach(connection, from: session) }
        if actions.cancelHeldTimer {
            scheduled?.cancel()
            scheduled = nil
        }
        if let held = actions.startHeldTimer, let eventLoop {
            scheduled = eventLoop.scheduleTask(in: held.timeout) {
                broker.timeoutHeldConnect(held)
            }
        }
    }
}
