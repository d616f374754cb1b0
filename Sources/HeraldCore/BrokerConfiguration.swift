/// Broker limits and timeouts. Every limit carries its unit in its name; each is documented
/// in README and `Protocol/PROTOCOL.md`.
public struct BrokerConfiguration: Sendable {
    /// How long a `/meta/connect` is held before an empty reply, sent to clients as
    /// `advice.timeout`. Faye uses 60 s, CometD 30 s.
    public var connectTimeoutMilliseconds: Int = 30_000
    /// A session that has not sent `/meta/connect` for this long after its last connect reply
    /// is dropped. Never while a connect is held.
    public var maxIntervalMilliseconds: Int = 30_000
    /// Largest single message object, in bytes. Larger ones get `413:<limit>:Message too large`.
    /// 128 KiB admits a 64 KiB JSON document with its envelope and escaping. Memory is bounded
    /// by the byte limits on queues (`maxPendingBytesPerSession`) and batches, not by keeping
    /// messages small; nats-server's default payload limit is 1 MiB.
    public var maxMessageBytes: Int = 128 * 1024
    /// Largest batch (WebSocket message or HTTP body), in bytes. Larger ones get a WebSocket
    /// close 1009 or HTTP 413.
    public var maxBatchBytes: Int = 1024 * 1024
    /// Most messages in one batch.
    public var maxMessagesPerBatch: Int = 1024
    /// Bytes of undelivered messages a session may have queued before it is treated as a
    /// slow consumer and disconnected.
    public var maxPendingBytesPerSession: Int = 1024 * 1024
    /// Most subscriptions one session may hold.
    public var maxSubscriptionsPerSession: Int = 1024
    /// Publishes one session may make per second, in bursts of twice that; more get
    /// `429:publish_rate:Too many publishes`. 0 (the default): no limit, so that one
    /// publisher can feed a channel as fast as the broker delivers.
    public var maxPublishesPerSecondPerSession: Int = 0
    /// Refuse handshakes without a valid token (`401`, advice `none`). The transport verifies
    /// the token (`HandshakeCredential`); `herald serve` sets this when a key is configured.
    public var requiresAuthentication = false
    /// Most concurrent sessions; handshakes beyond it are refused.
    public var maxSessions: Int = 200_000
    /// Most channels with a log (retained value or history, `channels`). A publish that would
    /// start another is refused (`503`), so that publishes to ever new channel names cannot
    /// grow memory and the store without bound. Memory for logs is about this many times a
    /// channel's `historySize` times its message size.
    public var maxLoggedChannels: Int = 100_000
    /// Accept publishes without a valid clientId (Faye does; CometD does not).
    public var allowAnonymousPublish: Bool = false
    /// How often expired sessions are swept.
    public var sweepIntervalMilliseconds: Int = 1_000
    /// How often rate-limited (`maxFrequency`) messages are released.
    public var throttleTickMilliseconds: Int = 20
    /// Options by channel pattern: retained values, history, persistence. Empty by default:
    /// nothing is retained.
    public var channels = ChannelPolicyTable()

    public init() {}
}
