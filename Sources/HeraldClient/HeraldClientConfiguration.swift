public import HeraldProtocol
public import NIOSSL

/// How a ``HeraldClient`` connects, authenticates, times out and reconnects.
///
/// The defaults suit a service on a local network: WebSocket first with long-polling as the
/// fallback, 10 s to connect, 30 s for a reply, and reconnects from 100 ms backing off to 10 s.
public struct HeraldClientConfiguration: Sendable {
    /// The transports the client may use, in order of preference.
    public enum Transport: String, Sendable, CaseIterable {
        /// Bayeux over one WebSocket (`ws://` or `wss://`).
        case websocket
        /// Bayeux long-polling over HTTP/1.1 (`http://` or `https://`), for networks that
        /// refuse the WebSocket upgrade.
        case longPolling = "long-polling"
    }

    /// When and how fast to reconnect after a connection is lost.
    public struct ReconnectPolicy: Sendable {
        /// The wait before the first reconnect attempt.
        public var initialDelay: Duration
        /// The longest wait between attempts; each failed attempt doubles the wait up to it.
        public var maximumDelay: Duration
        /// Each wait is shortened by a random fraction of itself up to this (0 to 1), so that
        /// clients dropped together do not come back together.
        public var jitter: Double
        /// Give up after this many failed attempts in a row (nil: never).
        public var maximumAttempts: Int?

        public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(10), jitter: Double = 0.5, maximumAttempts: Int? = nil) {
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
            self.jitter = min(max(jitter, 0), 1)
            self.maximumAttempts = maximumAttempts
        }

        /// Never reconnect: a lost connection closes the client.
        public static let never = ReconnectPolicy(maximumAttempts: 0)

        /// The wait before attempt `attempt` (1 for the first reconnect).
        func delay(attempt: Int) -> Duration {
            let exponent = min(max(attempt - 1, 0), 30)
            let full = min(initialDelay * (1 << exponent), maximumDelay)
            let cut = Double.random(in: 0...jitter)
            return full * (1 - cut)
        }
    }

    /// The transports to try, in order. WebSocket first; long-polling is used when the
    /// WebSocket upgrade is refused (as by some proxies), and then for the client's lifetime.
    public var transports: [Transport] = [.websocket, .longPolling]
    /// TLS for `wss://` and `https://` URLs: trust roots (a private CA), client certificates.
    /// Nil uses the system's trust roots.
    public var tls: TLSConfiguration?
    /// HTTP headers sent with the WebSocket upgrade and with every long-polling request.
    public var headers: [(name: String, value: String)] = []
    /// A bearer token (a JWT, for Herald's `--jwt-*` options). It is sent in the handshake's
    /// `ext.auth.token` and as `Authorization: Bearer` on the upgrade and every HTTP request,
    /// which is how a session proves on later requests that it is the client's own.
    public var token: String?
    /// Members added to the handshake's `ext` (for servers that authenticate through an
    /// extension).
    public var handshakeExtension = JSONObject()
    /// How long opening a connection and the handshake may take.
    public var connectTimeout: Duration = .seconds(10)
    /// How long a subscribe or publish waits for its reply, including waiting for a connection.
    public var requestTimeout: Duration = .seconds(30)
    /// When and how fast to reconnect.
    public var reconnect = ReconnectPolicy()
    /// The largest message (WebSocket frame or HTTP response) accepted from the server.
    public var maximumMessageBytes = 16 * 1024 * 1024
    /// How many received messages one subscription holds for a consumer that has not taken
    /// them yet (at least 1). At that many, newer messages on that subscription are dropped
    /// (its memory stays bounded, and the other subscriptions and publishes are not held up)
    /// until the consumer has taken half of them; then, before the next message, it gets one
    /// ``HeraldEvent/gap(_:)`` per channel that lost messages, with
    /// ``HeraldGap/droppedMessages``. On a Herald channel with history, resubscribe with
    /// `replay: .after(offset:)` from the gap's ``HeraldGap/lastDelivered`` to fetch what was
    /// dropped.
    public var maximumBufferedMessages = 65_536

    public init() {}
}
