public import HeraldProtocol
public import NIOCore

/// One logged message: its offset on its channel, its raw JSON `data`, when it was published
/// (milliseconds since 1970, for TTLs that survive restarts), and the `ext` that server-side
/// extensions gave it (`BayeuxExtension.outgoingDelivery`), which its retained and replayed
/// copies carry too (Herald's own `ext.herald` is not stored: it is made per delivery).
public struct StoredMessage: Sendable, Equatable {
    public var offset: UInt64
    public var data: ByteBuffer
    public var timestampMilliseconds: Int64
    public var ext: JSONObject?

    public init(offset: UInt64, data: ByteBuffer, timestampMilliseconds: Int64, ext: JSONObject? = nil) {
        self.offset = offset
        self.data = data
        self.timestampMilliseconds = timestampMilliseconds
        self.ext = ext
    }
}

/// What a store holds for one channel.
public struct StoredChannel: Sendable, Equatable {
    public var name: String
    public var epoch: String
    /// The highest offset ever assigned and written (0 if none).
    public var lastOffset: UInt64
    /// Oldest first.
    public var history: [StoredMessage]
    public var retained: StoredMessage?

    public init(name: String, epoch: String, lastOffset: UInt64, history: [StoredMessage] = [], retained: StoredMessage? = nil) {
        self.name = name
        self.epoch = epoch
        self.lastOffset = lastOffset
        self.history = history
        self.retained = retained
    }
}

/// What a store found when it opened.
public struct StoreRecovery: Sendable {
    public var channels: [StoredChannel]
    /// False when the previous run ended without `close()` (a crash or kill -9): messages
    /// acknowledged without `durable` may be missing, so offsets must not be reused.
    public var cleanShutdown: Bool

    public init(channels: [StoredChannel], cleanShutdown: Bool) {
        self.channels = channels
        self.cleanShutdown = cleanShutdown
    }
}

/// One change to the store.
public enum StoreWrite: Sendable, Equatable {
    /// Appends a message. With `historyFrom`, it joins the channel's history, and history
    /// entries with lower offsets are dropped: the broker trims history by count in memory and
    /// hands the store the oldest offset it kept, so that the two agree across the offset gap
    /// after a crash (see `Broker.restore`), where the newest N offsets are not N messages.
    /// With `retain`, it becomes the retained value.
    case append(channel: String, epoch: String, message: StoredMessage, historyFrom: UInt64?, retain: Bool)
    /// Drops history entries published before the given time.
    case trimHistory(channel: String, before: Int64)
    /// Forgets the retained value if it is the one at `offset` (TTL expiry).
    case dropRetained(channel: String, offset: UInt64)
}

/// Persistence for retained messages, history, offsets and epochs.
///
/// The broker keeps the authoritative copy in memory and writes behind, in batches (group
/// commit), so delivery never waits on the store, except for `durable` channels, whose
/// publishes are acknowledged only once `write` returns. `HeraldSQLite` is the embedded
/// default; `InMemoryMessageStore` is its twin for tests, and one conformance suite runs
/// against both.
public protocol MessageStore: Sendable {
    /// Opens the store and returns everything in it.
    func open() async throws -> StoreRecovery
    /// Applies `writes` atomically and durably; returns once they are committed. It must run
    /// to its end even when the calling task is cancelled: the last commit before a shutdown
    /// may come from one, and acknowledged data must not be lost to it.
    func write(_ writes: [StoreWrite]) async throws
    /// Records a clean shutdown and releases the store; like `write`, whatever the calling
    /// task's cancellation.
    func close() async throws
}
