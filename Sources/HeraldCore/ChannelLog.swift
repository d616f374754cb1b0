import DequeModule
import HeraldProtocol
import NIOCore

/// The in-memory log of one channel with options: its epoch, the next offset, recent history
/// and the retained value. Guarded by the `MessageLog` lock.
final class ChannelLog {
    let name: ChannelName
    var options: ChannelPolicy
    /// Changes whenever the channel's history is lost, so clients can tell a resume position
    /// from another life of the channel.
    var epoch: String
    /// The offset the next message gets. Offsets start at 1.
    var nextOffset: UInt64
    var history = Deque<StoredMessage>()
    var retained: StoredMessage?
    /// Durable channels: offsets handed out whose commit has not completed, oldest first. Their
    /// messages join the history, and reach subscribers, once committed.
    var uncommitted = Deque<UInt64>()

    init(name: ChannelName, options: ChannelPolicy, epoch: String, nextOffset: UInt64 = 1) {
        self.name = name
        self.options = options
        self.epoch = epoch
        self.nextOffset = nextOffset
    }

    var lastOffset: UInt64 { nextOffset - 1 }

    /// The oldest offset a resume can start after without a gap.
    var oldestResumableOffset: UInt64 { (history.first?.offset ?? nextOffset) - 1 }

    func append(_ message: StoredMessage) {
        if options.historySize > 0 {
            history.append(message)
            if history.count > options.historySize { history.removeFirst(history.count - options.historySize) }
        }
        if options.retain { retained = message }
    }

    /// Where the history starts once `offset`, and every uncommitted message before it, has
    /// joined it: what the store is told to keep (`StoreWrite.append`). Nil without history.
    func historyStart(afterAppending offset: UInt64) -> UInt64? {
        guard options.historySize > 0 else { return nil }
        let skipped = history.count + uncommitted.count + 1 - options.historySize
        if skipped <= 0 { return history.first?.offset ?? uncommitted.first ?? offset }
        if skipped < history.count { return history[skipped].offset }
        if skipped - history.count < uncommitted.count { return uncommitted[skipped - history.count] }
        return offset
    }

    /// Drops what the TTLs say is stale. Returns the store writes that mirror it.
    func expire(nowMilliseconds: Int64) -> [StoreWrite] {
        var writes: [StoreWrite] = []
        if let ttl = options.historyTTLMilliseconds, let first = history.first, first.timestampMilliseconds < nowMilliseconds - ttl {
            while let first = history.first, first.timestampMilliseconds < nowMilliseconds - ttl { history.removeFirst() }
            writes.append(.trimHistory(channel: name.rawValue, before: nowMilliseconds - ttl))
        }
        if let ttl = options.retainedTTLMilliseconds, let retained, retained.timestampMilliseconds < nowMilliseconds - ttl {
            self.retained = nil
            writes.append(.dropRetained(channel: name.rawValue, offset: retained.offset))
        }
        return writes
    }

    /// The `ext` of a delivery from this channel: `base` (what extensions added) with
    /// `"herald":{"offset":N,"epoch":"…"}` set.
    func ext(offset: UInt64, retained: Bool = false, on base: JSONObject? = nil) -> JSONObject {
        var herald = JSONObject()
        herald["offset"] = .number(String(offset))
        herald["epoch"] = .string(epoch)
        if retained { herald["retained"] = .bool(true) }
        var ext = base ?? JSONObject()
        ext["herald"] = .object(herald)
        return ext
    }

    func delivery(_ message: StoredMessage, retained: Bool = false) -> Delivery {
        Delivery(channel: name, data: message.data, ext: ext(offset: message.offset, retained: retained, on: message.ext))
    }

    static func newEpoch() -> String {
        var rng = SystemRandomNumberGenerator()
        let value = rng.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Channel logs by name, as a tree so that a wildcard subscriber finds every matching channel
/// without a scan of all of them (nats-server's ReverseMatch).
struct ChannelLogTree {
    final class Node {
        var children: [Substring: Node] = [:]
        var log: ChannelLog?
    }

    private let root = Node()
    /// Logs in the tree. Logs are never removed, so a listing of names made at a count is
    /// current as long as the count is.
    private(set) var count = 0

    func find(_ name: ChannelName) -> ChannelLog? {
        var node = root
        let found = name.forEachSegment { segment in
            guard let child = node.children[segment] else { return false }
            node = child
            return true
        }
        return found ? node.log : nil
    }

    mutating func insert(_ log: ChannelLog) {
        var node = root
        for segment in log.name.segments {
            if let child = node.children[segment] {
                node = child
            } else {
                let child = Node()
                node.children[segment] = child
                node = child
            }
        }
        if node.log == nil { count += 1 }
        node.log = log
    }

    /// Every log whose channel `pattern` matches, in channel-name order.
    func matching(_ pattern: ChannelPattern) -> [ChannelLog] {
        var node = root
        for segment in pattern.prefix {
            guard let child = node.children[segment] else { return [] }
            node = child
        }
        var result: [ChannelLog] = []
        switch pattern.kind {
        case .literal:
            if let log = node.log { result.append(log) }
        case .singleWildcard:
            for key in node.children.keys.sorted() {
                if let log = node.children[key]!.log { result.append(log) }
            }
        case .deepWildcard:
            var stack: [Node] = node.children.keys.sorted(by: >).map { node.children[$0]! }
            while let next = stack.popLast() {
                if let log = next.log { result.append(log) }
                stack.append(contentsOf: next.children.keys.sorted(by: >).map { next.children[$0]! })
            }
        }
        return result
    }

    func all() -> [ChannelLog] {
        var result: [ChannelLog] = []
        var stack = [root]
        while let next = stack.popLast() {
            if let log = next.log { result.append(log) }
            stack.append(contentsOf: next.children.values)
        }
        return result
    }
}
