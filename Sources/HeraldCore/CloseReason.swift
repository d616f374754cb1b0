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
