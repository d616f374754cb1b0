import NIOCore

/// The core's whole view of a connection: somewhere a session's messages can go.
///
/// The server module implements it for WebSocket connections and for held long-poll
/// requests; tests implement it in memory. Methods are called from any thread and must not
/// block: implementations hop to their own event loop.
public protocol SessionSink: AnyObject, Sendable {
    /// The session has queued messages; drain them with `Session.drain(for:)` soon. Called once
    /// per transition from "nothing pending" to "something pending", so a burst of publishes
    /// causes one drain (and one write) per connection.
    func messagesAvailable(_ session: Session)

    /// The server ended the session (slow consumer, shutdown, expiry).
    func sessionClosed(_ session: Session, reason: CloseReason)
}

/// Receives the reply to a held `/meta/connect`.
public protocol HeldConnectResponder: AnyObject, Sendable {
    /// Called exactly once, from any thread, with the encoded connect reply and, for HTTP
    /// transports, the queued events to send in the same response.
    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer])
}

/// A connection that both receives pushed messages and answers held connects.
public typealias BayeuxConnection = SessionSink & HeldConnectResponder

/// Why the server ended a session or a connection. Each has a WebSocket close code
/// (RFC 6455 §7.4; 4000-4999 are Herald's own), listed in `Protocol/PROTOCOL.md`.
public struct CloseReason: Hashable, Sendable, CustomStringConvertible {
    public let code: UInt16
    public let name: String

    /// The server is shutting down; reconnect later (1001).
    public static let goingAway = CloseReason(code: 1001, name: "going_away")
    /// The client disconnected.
    public static let clientDisconnected = CloseReason(code: 1000, name: "client_disconnect")
    /// The session was not connected for `maxInterval`.
    public static let expired = CloseReason(code: 4000, name: "session_expired")
    /// More than `maxPendingBytesPerSession` was waiting for this client (4001).
    public static let slowConsumer = CloseReason(code: 4001, name: "slow_consumer")

    public var description: String { name }
}
