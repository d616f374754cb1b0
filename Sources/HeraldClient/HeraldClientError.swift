/// An error from ``HeraldClient``: what went wrong (``code-swift.property``), and the
/// server's Bayeux error string (`code:args:message`) where the server gave one.
public struct HeraldClientError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Sendable {
            case handshakeRefused = "handshake refused"
            case subscriptionDenied = "subscription denied"
            case publishRefused = "publish refused"
            case replayPositionLost = "replay position lost"
            case connectionClosed = "connection closed"
            case timedOut = "timed out"
            case invalidURL = "invalid URL"
            case unreachable = "server unreachable"
            case protocolViolation = "protocol violation"
            case decodingFailed = "decoding failed"
        }
        let base: Base

        /// The server refused the handshake (a bad token, a limit) or advised not to retry.
        public static let handshakeRefused = Code(base: .handshakeRefused)
        /// The server refused a subscribe (forbidden channel, invalid pattern, a limit).
        public static let subscriptionDenied = Code(base: .subscriptionDenied)
        /// The server refused a publish; ``HeraldClientError/bayeuxError`` has its reason.
        public static let publishRefused = Code(base: .publishRefused)
        /// A replay position the caller asked for is no longer served (`409`/`410`).
        public static let replayPositionLost = Code(base: .replayPositionLost)
        /// The client was closed, or the connection was lost with the request unanswered.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// No reply within ``HeraldClientConfiguration/requestTimeout`` or
        /// ``HeraldClientConfiguration/connectTimeout``.
        public static let timedOut = Code(base: .timedOut)
        /// The URL is not `ws`, `wss`, `http` or `https` with a host.
        public static let invalidURL = Code(base: .invalidURL)
        /// The server could not be reached (refused, unknown host, TLS failure).
        public static let unreachable = Code(base: .unreachable)
        /// The server sent something that is not Bayeux.
        public static let protocolViolation = Code(base: .protocolViolation)
        /// A message's `data` did not decode into the subscription's type.
        public static let decodingFailed = Code(base: .decodingFailed)

        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// The server's error string, `code:args:message` (Bayeux 1.0 §3.2.6), if it sent one.
    public var bayeuxError: String?
    /// The channel or pattern concerned, if any.
    public var channel: String?
    /// More detail: the underlying error, or what the server sent.
    public var detail: String?

    public init(_ code: Code, bayeuxError: String? = nil, channel: String? = nil, detail: String? = nil) {
        self.code = code
        self.bayeuxError = bayeuxError
        self.channel = channel
        self.detail = detail
    }

    /// The numeric code of ``bayeuxError`` (`403` of `403:/x:Forbidden channel`).
    public var bayeuxCode: Int? {
        bayeuxError.flatMap { Int($0.prefix { $0 != ":" }) }
    }

    public var description: String {
        var text = code.description
        if let channel { text += " (\(channel))" }
        if let bayeuxError { text += ": \(bayeuxError)" }
        if let detail { text += bayeuxError == nil ? ": \(detail)" : " [\(detail)]" }
        return text
    }
}
