/// Bayeux `advice` (Bayeux 1.0 §3.2.5): what the client should do after a reply.
public struct Advice: Hashable, Sendable {
    public enum Reconnect: String, Sendable {
        /// Send the next `/meta/connect` after `interval`.
        case retry
        /// The session is gone: handshake again.
        case handshake
        /// Stop; the server will not accept this client again.
        case none
    }

    public var reconnect: Reconnect
    /// Milliseconds to wait between connects. Always 0 by default: aiocometd reads it as
    /// seconds (bayeux-notes §1.5), so anything else stalls that client.
    public var intervalMilliseconds: Int
    /// Milliseconds the server holds a `/meta/connect`, if present.
    public var timeoutMilliseconds: Int?

    public init(reconnect: Reconnect, intervalMilliseconds: Int = 0, timeoutMilliseconds: Int? = nil) {
        self.reconnect = reconnect
        self.intervalMilliseconds = intervalMilliseconds
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public static let handshake = Advice(reconnect: .handshake)
    public static let none = Advice(reconnect: .none)

    public var json: JSONValue {
        var object = JSONObject()
        object["reconnect"] = .string(reconnect.rawValue)
        object["interval"] = .int(intervalMilliseconds)
        if let timeoutMilliseconds { object["timeout"] = .int(timeoutMilliseconds) }
        return .object(object)
    }
}
