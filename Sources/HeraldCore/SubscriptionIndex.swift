import HeraldProtocol

/// Finds the sessions subscribed to a channel: a trie over channel segments, with `*` and
/// `**` subscribers kept at the node of their prefix, and a bounded match cache in front
/// (nats-server's sublist does the same).
///
/// Not thread-safe; the broker guards it with its index lock.
struct SubscriptionIndex {
    /// Cached match results before the cache is cleared.
    static let maxCachedChannels = 32_768

    final class Node {
        var children: [Substring: Node] = [:]
        /// Sessions subscribed to exactly this node's channel.
        var literal: [ObjectIdentifier: Session] = [:]
        /// Sessions subscribed to `<this node>/*`.
        var single: [ObjectIdentifier: Session] = [:]
        /// Sessions subscribed to `<this node>/**`.
        var deep: [ObjectIdentifier: Session] = [:]

        var isEmpty: Bool { children.isEmpty && literal.isEmpty && single.isEmpty && deep.isEmpty }
    }

    private let root = Node()
    private var cache: [String: [Session]] = [:]
    private(set) var subscriptionCount = 0

    /// The sessions a publish to `channel` reaches, without touching the match cache: for the
    /// admin API, whose lookups must not evict the hot path's entries.
    func subscribers(of channel: ChannelName) -> [Session] { lookup(channel) }

    /// The channels with at least one exact-name subscriber, unsorted. A walk over the trie:
    /// for the admin API's listings, never the hot path.
    /// Changes whenever a channel gains its first or loses its last exact-name subscriber, so
    /// that a cached `literalChannels()` can tell that it is stale.
    private(set) var literalChannelsChanged: UInt64 = 0

    func literalChannels() -> [String] {
        var result: [String] = []
        var stack: [(Node, String)] = [(root, "")]
        while let (node, path) = stack.popLast() {
            if !node.literal.isEmpty { result.append(path) }
            for (segment, child) in node.children { stack.append((child, path + "/" + segment)) }
        }
        return result
    }

    mutating func add(_ pattern: ChannelPattern, _ session: Session) {
        var node = root
        for segment in pattern.prefix {
            if let child = node.children[segment] {
                node = child
            } else {
                let child = Node()
                node.children[segment] = child
                node = child
            }
        }
        let key = ObjectIdentifier(session)
        let inserted: Bool
        switch pattern.kind {
        case .literal:
            inserted = node.literal.updateValue(session, forKey: key) == nil
            if inserted, node.literal.count == 1 { literalChannelsChanged &+= 1 }
        case .singleWildcard: inserted = node.single.updateValue(session, forKey: key) == nil
        case .deepWildcard: inserted = node.deep.updateValue(session, forKey: key) == nil
        }
        if inserted {
            subscriptionCount += 1
            invalidate(pattern)
        }
    }

    mutating func remove(_ pattern: ChannelPattern, _ session: Session) {
        var path: [Node] = [root]
        for segment in pattern.prefix {
            guard let child = path.last!.children[segment] else { return }
            path.append(child)
        }
        let node = path.last!
        let key = ObjectIdentifier(session)
        let removed: Bool
        switch pattern.kind {
        case .literal:
            removed = node.literal.removeValue(forKey: key) != nil
            if removed, node.literal.isEmpty { literalChannelsChanged &+= 1 }
        case .singleWildcard: removed = node.single.removeValue(forKey: key) != nil
        case .deepWildcard: removed = node.deep.removeValue(forKey: key) != nil
        }
        guard removed else { return }
        subscriptionCount -= 1
        invalidate(pattern)
        // Prune empty nodes so that churn over many channel names does not grow the trie.
        var i = path.count - 1
        while i > 0, path[i].isEmpty {
            path[i - 1].children[pattern.prefix[i - 1]] = nil
            i -= 1
        }
    }

    private mutating func invalidate(_ pattern: ChannelPattern) {
        if pattern.kind == .literal {
            cache[pattern.rawValue] = nil
        } else {
            cache.removeAll(keepingCapacity: true)
        }
    }

    /// The sessions subscribed to `channel`, each once, however many of its patterns match.
    mutating func match(_ channel: ChannelName) -> [Session] {
        if let hit = cache[channel.rawValue] { return hit }
        let result = lookup(channel)
        if cache.count >= Self.maxCachedChannels { cache.removeAll(keepingCapacity: true) }
        cache[channel.rawValue] = result
        return result
    }

    private func lookup(_ channel: ChannelName) -> [Session] {
        var sources: [[ObjectIdentifier: Session]] = []
        var node = root
        let last = channel.segmentCount - 1
        var depth = 0
        let complete = channel.forEachSegment { segment in
            if !node.deep.isEmpty { sources.append(node.deep) }
            if depth == last, !node.single.isEmpty { sources.append(node.single) }
            guard let child = node.children[segment] else { return false }
            node = child
            depth += 1
            return true
        }
        if complete, !node.literal.isEmpty { sources.append(node.literal) }
        return merge(sources)
    }

    private func merge(_ sources: [[ObjectIdentifier: Session]]) -> [Session] {
        switch sources.count {
        case 0: return []
        case 1: return Array(sources[0].values)
        default:
            var seen = Set<ObjectIdentifier>()
            var result: [Session] = []
            for source in sources {
                for (key, session) in source where seen.insert(key).inserted {
                    result.append(session)
                }
            }
            return result
        }
    }
}
