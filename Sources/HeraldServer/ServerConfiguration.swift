import NIOCore

/// Data-plane listener settings.
public struct ServerConfiguration: Sendable {
    public var host: String = "0.0.0.0"
    /// 0 picks a free port; `HeraldServer.localAddress` tells which.
    public var port: Int = 8080
    /// Verifies handshake tokens; with one, set `BrokerConfiguration.requiresAuthentication`
    /// too (`herald serve` does), and every handshake needs a valid token.
    public var tokenVerifier: TokenVerifier?
    /// Serve TLS (https, wss) with this certificate and key; nil serves plaintext.
    public var tls: TLSCertificates?
    /// Mount path for WebSocket, long-polling and callback-polling. Sub-paths are served
    /// too (`/bayeux/connect`, as CometD's browser client sends).
    public var path: String = "/bayeux"
    /// Browser origins allowed for CORS and WebSocket upgrades, besides the server's own
    /// origin and loopback origins, which are always allowed (`CORSPolicy`). Origins listed by
    /// name get credentialed CORS; `"*"` allows every other origin without credentials.
    /// Requests without an `Origin` (non-browser clients) are always served.
    public var allowedOrigins: [String] = []
    /// Keepalive tick for WebSocket connections. A connection that sent no frame during a whole
    /// interval gets a ping each tick; after three silent intervals it is closed with 1001
    /// (so 3 to 4 intervals after its last frame).
    public var webSocketPingIntervalSeconds: Int = 30
    /// An HTTP connection must send a complete request (head and body) within this many
    /// seconds of being accepted, and of each response it got; otherwise it is closed. A held
    /// `/meta/connect` is not waiting for a request, so long-polling is unaffected. This
    /// bounds idle keep-alive connections and clients that trickle a request byte by byte.
    public var requestTimeoutSeconds: Int = 30
    /// A connection's socket buffer may hold this many bytes before Herald stops writing to
    /// it and lets the session's queue absorb the rest (and apply the slow-consumer policy).
    public var writeBufferHighWaterMarkBytes: Int = 256 * 1024
    public var writeBufferLowWaterMarkBytes: Int = 64 * 1024
    /// A connection with more than this many bytes waiting to be sent is closed. Reading from
    /// a connection stops while more than the high-water mark waits (so a client that sends
    /// and never reads is not read any more); this bounds the replies to one read burst.
    public var maxOutboundBufferBytes: Int = 4 * 1024 * 1024
    /// A connection whose socket stays full (its peer reads nothing) this long is closed.
    public var writeStallTimeoutSeconds: Int = 30
    /// Handshakes one connection may make per second (bursts of twice as many pass). More are
    /// answered `429:handshake_rate_connection:Too many handshakes`. 0: no limit.
    public var handshakesPerSecondPerConnection: Int = 10
    /// Handshakes one IP address may make per second (bursts of twice as many pass). More are
    /// answered `429:handshake_rate_ip:Too many handshakes`. 0: no limit. Loopback addresses
    /// are exempt unless `rateLimitLoopback` is set: behind a proxy on the same host, every
    /// client would share one address.
    public var handshakesPerSecondPerIP: Int = 50
    /// Open connections, over all clients; more are closed as they are accepted. 0: no limit.
    public var maxConnections: Int = 100_000
    /// Open connections from one IP address; more are closed as they are accepted. 0: no
    /// limit. Loopback addresses are exempt unless `rateLimitLoopback` is set.
    public var maxConnectionsPerIP: Int = 1_000
    /// Proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` is believed
    /// (`TrustedProxies`). Their connections are exempt from `maxConnectionsPerIP`; the
    /// handshake rate per IP and the admin API's client address use the forwarded address.
    public var trustedProxies: [String] = []
    /// Apply the per-IP limits (connections, handshakes) to loopback addresses too.
    public var rateLimitLoopback: Bool = false
    /// On shutdown, how long connections get to finish (answer held connects, send close
    /// frames, complete a response in progress) before they are closed outright.
    public var shutdownTimeoutSeconds: Int = 10

    public init() {}
}
