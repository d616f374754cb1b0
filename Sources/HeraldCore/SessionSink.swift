package import NIOCore

/// The core's whole view of a connection: somewhere a session's messages can go.
///
/// The server module implements it for WebSocket connections and for held long-poll
/// requests; tests implement it in memory. Methods are called from any thread and must not
/// block: implementations hop to their own event loop.
package protocol SessionSink: AnyObject, Sendable {
    /// The session has queued messages; drain them with `Session.drain(for:)` soon. Called once
    /// per transition from "nothing pending" to "something pending", so a burst of publishes
    /// causes one drain (and one write) per connection.
    func messagesAvailable(_ session: Session)

    /// The server ended the session (slow consumer, shutdown, expiry).
    func sessionClosed(_ session: Session, reason: CloseReason)

    /// The peer's address, which the session remembers at each `/meta/connect` for operators.
    var remoteAddress: SocketAddress? { get }
}

extension SessionSink {
    package var remoteAddress: SocketAddress? { nil }
}
