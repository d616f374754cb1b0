public import HeraldProtocol
public import NIOCore

/// A message another node (or this one, through the shared store) published, in the order the
/// shared store committed it.
public struct ClusterMessage: Sendable, Equatable {
    public var channel: ChannelName
    /// The offset the shared store assigned; nil for a channel without a log (live only).
    public var offset: UInt64?
    public var data: ByteBuffer
    public var ext: JSONObject?
    public var timestampMilliseconds: Int64
    /// The node that published it.
    public var node: String

    public init(channel: ChannelName, offset: UInt64?, data: ByteBuffer, ext: JSONObject?, timestampMilliseconds: Int64, node: String) {
        self.channel = channel
        self.offset = offset
        self.data = data
        self.ext = ext
        self.timestampMilliseconds = timestampMilliseconds
        self.node = node
    }
}

/// What the broker needs of a shared store for several nodes to act as one broker.
///
/// The single-node default keeps offsets in memory and writes behind to a `MessageStore`
/// (SQLite). With a cluster engine (PostgreSQL, `HeraldPostgres`), the shared store assigns
/// offsets, every node keeps the same logs as a cache fed by the store's ordered stream, and
/// each node delivers to its own subscribers only, encoding each message once per node.
///
/// - Offsets and the epoch come from the shared store: `append` completes with the offset, in
///   the order the store committed it. All channels share one epoch, `epoch`, which changes
///   only when the shared store is new.
/// - Every committed message reaches `deliver` on every node, this one included, in commit
///   order (so per channel in offset order). Messages on channels without a log are routed by
///   the publishing node itself and reach the other nodes through `broadcast`.
/// - After the engine lost its connection, it hands `deliver` what it missed (from the shared
///   store) before new messages; the broker drops what it already has by offset.
public protocol ClusterEngine: Sendable {
    /// This node's name, unique in the cluster.
    var node: String { get }
    /// The epoch of every channel's offsets in the shared store.
    var epoch: String { get }
    /// True while the shared store is reachable and its stream is followed.
    var isReady: Bool { get }
    /// Connects, starts following the stream, hands `restore` every logged channel's state,
    /// and from then on hands `deliver` every message committed after that state, in commit
    /// order (never before `restore` has returned).
    func start(restore: @escaping @Sendable ([StoredChannel]) -> Void, deliver: @escaping @Sendable ([ClusterMessage]) -> Void) async throws
    /// Appends a message to a logged channel: the shared store assigns its offset in the same
    /// transaction as the insert. `completion` runs once it is committed (with its offset), or
    /// with the error that kept it from being committed.
    func append(_ message: ClusterAppend, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void)
    /// Sends a message on a channel without a log to the other nodes (best effort).
    func broadcast(_ delivery: Delivery)
    /// Runs the engine's loops (connection, batching, heartbeats) until cancelled.
    func run() async throws
    /// The nodes alive in the cluster, this one included.
    func nodes() async throws -> [ClusterNode]
}

/// A node of a cluster, as its last heartbeat described it.
public struct ClusterNode: Sendable {
    public var id: String
    public var startedAtMilliseconds: Int64
    public var heartbeatAtMilliseconds: Int64
    /// What the node reported: its broker's statistics.
    public var statistics: JSONObject

    public init(id: String, startedAtMilliseconds: Int64, heartbeatAtMilliseconds: Int64, statistics: JSONObject) {
        self.id = id
        self.startedAtMilliseconds = startedAtMilliseconds
        self.heartbeatAtMilliseconds = heartbeatAtMilliseconds
        self.statistics = statistics
    }
}

/// A publish to a logged channel, for `ClusterEngine.append`.
public struct ClusterAppend: Sendable {
    public var channel: ChannelName
    public var data: ByteBuffer
    public var ext: JSONObject?
    public var timestampMilliseconds: Int64
    /// The channel's options, which say how much the shared store keeps.
    public var historySize: Int
    /// How long history is kept (`historyTTL`), if the channel limits it.
    public var historyTTLMilliseconds: Int64?
    public var retain: Bool

    public init(channel: ChannelName, data: ByteBuffer, ext: JSONObject?, timestampMilliseconds: Int64, historySize: Int, historyTTLMilliseconds: Int64? = nil, retain: Bool) {
        self.channel = channel
        self.data = data
        self.ext = ext
        self.timestampMilliseconds = timestampMilliseconds
        self.historySize = historySize
        self.historyTTLMilliseconds = historyTTLMilliseconds
        self.retain = retain
    }
}

/// Why a publish to a logged channel failed in a cluster: the shared store is unreachable.
public struct ClusterUnavailable: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
