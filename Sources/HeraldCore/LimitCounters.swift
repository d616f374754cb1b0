public import Synchronization

/// The limits that protect the broker from its clients, and how often each refused or closed
/// something. Exported as `herald_limit_trips_total{limit="…"}`; the names are the labels.
public enum Limit: String, Sendable, CaseIterable {
    /// A connection's unsent bytes passed `maxOutboundBufferBytes`: it was closed.
    case outboundBytes = "outbound_bytes"
    /// A connection stayed unwritable past `writeStallTimeoutSeconds`: it was closed.
    case writeStall = "write_stall"
    /// More than one handshake in one message batch.
    case handshakesPerBatch = "handshakes_per_batch"
    /// Handshakes from one connection came faster than `handshakesPerSecondPerConnection`.
    case handshakeRateConnection = "handshake_rate_connection"
    /// Handshakes from one IP address came faster than `handshakesPerSecondPerIP`.
    case handshakeRateIP = "handshake_rate_ip"
    /// A handshake found `maxSessions` sessions.
    case sessions
    /// A connection was refused: `maxConnections` were open.
    case connections
    /// A connection was refused: `maxConnectionsPerIP` from its address were open.
    case connectionsPerIP = "connections_per_ip"
    /// A message was larger than `maxMessageBytes`.
    case messageBytes = "message_bytes"
    /// A batch (HTTP body, WebSocket message) was larger than `maxBatchBytes`, or in more
    /// than 1024 fragments.
    case batchBytes = "batch_bytes"
    /// A batch held more than `maxMessagesPerBatch` messages.
    case batchMessages = "batch_messages"
    /// A subscribe would pass `maxSubscriptionsPerSession`.
    case subscriptions
    /// A message's `id` was longer than `BayeuxMessage.maxIdBytes`.
    case idBytes = "id_bytes"
    /// A handshake without a valid token, while tokens are required.
    case authentication
    /// A session published faster than `maxPublishesPerSecondPerSession`.
    case publishRate = "publish_rate"
    /// A client published to a channel whose `publish` option does not let it.
    case channelPermission = "channel_permission"
    /// A request named a session it showed no claim to (`SessionBinding`), while tokens are
    /// required: answered as an unknown clientId.
    case sessionBinding = "session_binding"
}

/// One counter per `Limit`, bumped where the limit trips: never on the path of a
/// well-behaved client, so one lock for all of them is enough.
public final class LimitCounters: Sendable {
    private let counts = Mutex<[Limit: Int]>([:])

    public init() {}

    /// Counts `count` more trips of `limit`; returns its total.
    @discardableResult
    public func record(_ limit: Limit, _ count: Int = 1) -> Int {
        counts.withLock {
            $0[limit, default: 0] += count
            return $0[limit]!
        }
    }

    public func count(_ limit: Limit) -> Int {
        counts.withLock { $0[limit] ?? 0 }
    }

    /// Every limit's count, by label.
    public var all: [(limit: String, count: Int)] {
        Limit.allCases.map { ($0.rawValue, count($0)) }
    }
}
