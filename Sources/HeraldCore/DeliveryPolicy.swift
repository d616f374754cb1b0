import HeraldProtocol

/// What to do when a subscriber cannot keep up (configuration `slowConsumer`).
public enum SlowConsumerPolicy: String, Sendable, CaseIterable {
    /// Close the connection (WebSocket close 4001 `slow_consumer`; the next request gets
    /// `402` with `reconnect: handshake`). The default: nothing is silently lost.
    case disconnect
    /// Keep only the latest pending message per channel for that subscriber; send it when the
    /// socket drains. For last-value feeds (prices): a slow phone gets the latest price, not a
    /// backlog.
    case conflate
    /// Drop the oldest pending messages to make room, and count them.
    case dropOldest
}

/// How one publish is delivered, worked out once per publish from the channel's options.
struct DeliveryPolicy: Sendable {
    var slowConsumer: SlowConsumerPolicy = .disconnect
    /// The channel, for conflation and per-channel rate limits.
    var channel: String
    var channelName: ChannelName
    /// Minimum nanoseconds between two deliveries of this channel to one subscriber (from the
    /// channel's `maxFrequency`); 0 for none.
    var minimumIntervalNanoseconds: UInt64 = 0

    init(channel: ChannelName, options: ChannelPolicy?) {
        self.channel = channel.rawValue
        self.channelName = channel
        if let options {
            slowConsumer = options.slowConsumer
            minimumIntervalNanoseconds = options.maxFrequency.map(DeliveryPolicy.interval) ?? 0
        }
    }

    /// Nanoseconds between updates at `frequency` per second.
    static func interval(_ frequency: Double) -> UInt64 {
        UInt64(1_000_000_000 / max(frequency, 0.001))
    }
}
