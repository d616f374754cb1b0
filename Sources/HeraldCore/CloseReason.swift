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
    /// The session's token expired and no connect brought a fresh one (4003): handshake
    /// again with a new token.
    public static let tokenExpired = CloseReason(code: 4003, name: "token_expired")
    /// More than `maxPendingBytesPerSession` was waiting for this client (4001).
    public static let slowConsumer = CloseReason(code: 4001, name: "slow_consumer")

    /// An operator disconnected the client (4002), giving `reason`: it is told not to
    /// reconnect (`advice.reconnect: none`). The reason is kept to letters, digits, spaces and
    /// `_.-`, at most 64 of them, as it goes into a close frame and a Bayeux error string.
    public static func kicked(_ reason: String = "kicked") -> CloseReason {
        let allowed = reason.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || " _.-".unicodeScalars.contains($0)) }
        let text = String(String.UnicodeScalarView(allowed.prefix(64)))
        return CloseReason(code: 4002, name: text.isEmpty ? "kicked" : text)
    }

    public var description: String { name }
}
