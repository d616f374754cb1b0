package import HeraldProtocol
package import NIOCore
import Synchronization

/// What operators read and change through the admin API: counters, sessions, and publishes
/// from outside. Reads take the same short locks as the hot path and copy what they return.
extension Broker {
    /// The broker's counters, read at once.
    package struct Statistics: Sendable {
        package var sessions: Int
        package var subscriptions: Int
        /// Channels with a log (retained value or history).
        package var loggedChannels: Int
        package var published: Int
        package var delivered: Int
        package var dropped: Int
        package var slowConsumers: Int
        package var sessionsOpened: Int
        package var sessionsClosed: Int
        package var sessionsExpired: Int
        package var errors: Int
        package var storeWrites: Int
        package var storeCommits: Int
        package var storeFailures: Int
    }

    /// O(1): counters and table sizes, no walk over sessions.
    package var statistics: Statistics {
        let store = storeStatistics
        return Statistics(
            sessions: sessionCount,
            subscriptions: subscriptionCount,
            loggedChannels: logs.withLock { $0.count },
            published: counters.published.load(ordering: .relaxed),
            delivered: counters.delivered.load(ordering: .relaxed),
            dropped: counters.dropped.load(ordering: .relaxed),
            slowConsumers: counters.slowConsumers.load(ordering: .relaxed),
            sessionsOpened: counters.sessionsOpened.load(ordering: .relaxed),
            sessionsClosed: counters.sessionsClosed.load(ordering: .relaxed),
            sessionsExpired: counters.sessionsExpired.load(ordering: .relaxed),
            errors: counters.errors.load(ordering: .relaxed),
            storeWrites: store.writes,
            storeCommits: store.commits,
            storeFailures: store.failures
        )
    }

    /// Sessions in clientId order, after `cursor` (a clientId), at most `limit`; with
    /// `channel`, only those that receive messages published to it.
    package func sessions(after cursor: String?, limit: Int, receiving channel: ChannelName? = nil) -> [Session] {
        let candidates: [Session]
        if let channel {
            candidates = index.withLock { $0.subscribers(of: channel) }
        } else {
            candidates = sessions.withLock { Array($0.values) }
        }
        var page = candidates.filter { cursor == nil || $0.id > cursor! }
        page.sort { $0.id < $1.id }
        return Array(page.prefix(max(0, limit)))
    }

    /// Where an operator's publish went.
    package enum ServerPublishResult: Sendable, Equatable {
        /// Published; the offset and epoch where the channel keeps a log.
        case published(offset: UInt64?, epoch: String?)
        case refused(BayeuxError)
    }

    /// Publishes `data` (valid JSON) to `channel` as the server, under the same channel rules
    /// as a client's publish. On a `durable` channel it returns once the message is committed.
    package func publishFromServer(_ channel: ChannelName, data: ByteBuffer) async -> ServerPublishResult {
        guard !channel.isMeta, !channel.isService else { return .refused(.forbiddenChannel(channel.rawValue)) }
        let delivery = Delivery(channel: channel, data: data)
        if cluster != nil, acknowledgesAfterCommit(channel) {
            return await publishClustered(delivery)
        }
        if acknowledgesAfterCommit(channel) {
            return await withCheckedContinuation { (continuation: CheckedContinuation<ServerPublishResult, Never>) in
                // The outcome comes back from `publish`, the commit from the writer, in either
                // order; the answer goes once both are known.
                struct Pending {
                    var outcome: PublishOutcome?
                    var committed: Bool?
                    var answered = false
                }
                let pending = Mutex(Pending())
                let answer: @Sendable (_ update: (inout Pending) -> Void) -> Void = { update in
                    let ready = pending.withLock { p -> (PublishOutcome, Bool)? in
                        update(&p)
                        guard !p.answered, let outcome = p.outcome, let committed = p.committed else { return nil }
                        p.answered = true
                        return (outcome, committed)
                    }
                    guard let (outcome, committed) = ready else { return }
                    if let refusal = outcome.refusal {
                        continuation.resume(returning: .refused(refusal))
                    } else if committed {
                        continuation.resume(returning: .published(offset: outcome.position?.offset, epoch: outcome.position?.epoch))
                    } else {
                        continuation.resume(returning: .refused(.publishFailed("not committed to the message store")))
                    }
                }
                let outcome = publish(delivery) { ok in answer { $0.committed = ok } }
                answer { p in
                    p.outcome = outcome
                    if !outcome.awaitingCommit { p.committed = outcome.refusal == nil }
                }
            }
        }
        let result = publish(delivery, onCommit: nil)
        if let refusal = result.refusal { return .refused(refusal) }
        return .published(offset: result.position?.offset, epoch: result.position?.epoch)
    }
}

extension Broker {
    /// One channel as operators see it: who receives it, and what Herald keeps of it.
    package struct ChannelInfo: Sendable {
        package var name: String
        /// Sessions a publish to it reaches now (exact and wildcard subscriptions).
        package var subscribers: Int
        /// The options in force, if a configured pattern matches it.
        package var policy: ChannelPolicy?
        /// Its log, if it has one: epoch, last offset, messages in history, retained value.
        package var epoch: String?
        package var lastOffset: UInt64?
        package var historyCount: Int
        package var retained: StoredMessage?
    }

    /// Channels with a log or an exact-name subscriber, in name order, after `cursor` (a
    /// name), at most `limit`; with `pattern`, only those it matches. `more` says whether
    /// names follow the page (a channel that went away meanwhile is left out of the page
    /// without ending the listing).
    ///
    /// It reads the sorted listing `sortedChannelNames()` keeps, from the cursor (binary
    /// search) or from the pattern's literal prefix, whichever is later, and stops at the
    /// end of that prefix: a page costs O(log channels + page), not a sort of every name.
    package func channels(matching pattern: ChannelPattern?, after cursor: String?, limit: Int) -> (channels: [ChannelInfo], more: Bool, last: String?) {
        let names = sortedChannelNames()
        var start = cursor.map { cursor in names.partitioningIndex { $0.rawValue > cursor } } ?? 0
        var prefix: String?
        if let pattern, !pattern.prefix.isEmpty {
            // Every name the pattern matches starts with its literal prefix, and names with a
            // common start are neighbours in sorted order.
            let text = "/" + pattern.prefix.joined(separator: "/")
            start = max(start, names.partitioningIndex { $0.rawValue >= text })
            prefix = text
        }
        var page: [ChannelInfo] = []
        var taken = 0
        var last: String?
        var more = false
        for name in names[start...] {
            if let prefix, !name.rawValue.utf8.starts(with: prefix.utf8) { break }
            guard pattern == nil || pattern!.matches(name) else { continue }
            if taken == max(0, limit) {
                more = true
                break
            }
            taken += 1
            last = name.rawValue
            if let info = channel(name) { page.append(info) }
        }
        return (page, more, last)
    }

    /// The `limit` channels with the most subscribers (ties in name order), with `pattern`
    /// only those it matches: what a dashboard shows as the busiest. It counts every channel's
    /// subscribers, one short lock each, so it costs O(channels).
    package func busiestChannels(matching pattern: ChannelPattern?, limit: Int) -> [ChannelInfo] {
        guard limit > 0 else { return [] }
        var top: [(name: ChannelName, subscribers: Int)] = []
        // In name order, so a channel only displaces the last place with more subscribers.
        for name in sortedChannelNames() {
            guard pattern == nil || pattern!.matches(name) else { continue }
            let count = index.withLock { $0.subscribers(of: name).count }
            if top.count == limit, count <= top[top.count - 1].subscribers { continue }
            let at = top.firstIndex { count > $0.subscribers } ?? top.endIndex
            top.insert((name, count), at: at)
            if top.count > limit { top.removeLast() }
        }
        return top.compactMap { channel($0.name) }
    }

    /// The names of the channels with a log or an exact-name subscriber, sorted. The sorted
    /// array is kept and made again only when a channel appeared or went since (the log
    /// tree's count and the index's literal-change counter say so), so pages read while the
    /// set of channels holds still cost no sort.
    func sortedChannelNames() -> [ChannelName] {
        let logCount = logs.withLock { $0.tree.count }
        let literalChanges = index.withLock { $0.literalChannelsChanged }
        if let cached = channelListing.withLock({ $0.names(logCount: logCount, literalChanges: literalChanges) }) { return cached }
        // Read both trees after their counters: a change in between makes the next call
        // rebuild again, never serve a listing older than the counters it is stored under.
        let logged = logs.withLock { state in state.tree.all().map(\.name) }
        let subscribed = index.withLock { $0.literalChannels() }
        var names = Set(logged)
        for text in subscribed { if let name = ChannelName(text) { names.insert(name) } }
        let sorted = names.sorted()
        channelListing.withLock { $0.store(sorted, logCount: logCount, literalChanges: literalChanges) }
        return sorted
    }

    /// One channel, or nil if it has neither a log nor a subscriber.
    package func channel(_ name: ChannelName) -> ChannelInfo? {
        let policy = logsChannels ? configuration.channels.options(for: name) : nil
        let log = logs.withLock { state -> (epoch: String, lastOffset: UInt64, historyCount: Int, retained: StoredMessage?)? in
            guard let log = state.tree.find(name) else { return nil }
            return (log.epoch, log.lastOffset, log.history.count, log.retained)
        }
        let subscribers = index.withLock { $0.subscribers(of: name).count }
        guard log != nil || subscribers > 0 else { return nil }
        return ChannelInfo(name: name.rawValue, subscribers: subscribers, policy: policy, epoch: log?.epoch, lastOffset: log?.lastOffset, historyCount: log?.historyCount ?? 0, retained: log?.retained)
    }

    /// The channel's history after offset `after` (everything with nil), oldest first, at
    /// most `limit`, and its epoch; nil if the channel has no log.
    package func history(_ name: ChannelName, after: UInt64?, limit: Int) -> (epoch: String, messages: [StoredMessage])? {
        logs.withLock { state in
            guard let log = state.tree.find(name) else { return nil }
            // Offsets increase along the history: skip to the first one after `after`.
            let start = after.map { after in log.history.firstIndex { $0.offset > after } ?? log.history.endIndex } ?? log.history.startIndex
            let end = log.history.index(start, offsetBy: max(0, limit), limitedBy: log.history.endIndex) ?? log.history.endIndex
            return (log.epoch, Array(log.history[start..<end]))
        }
    }

    /// Forgets the channel's history (in memory and in the store); offsets go on. Returns the
    /// number of messages dropped, or nil if the channel has no log.
    package func clearHistory(_ name: ChannelName) -> Int? {
        logs.withLock { state in
            guard let log = state.tree.find(name) else { return nil }
            let dropped = log.history.count
            log.history.removeAll()
            if log.options.isPersisted { writer?.enqueue([.trimHistory(channel: name.rawValue, before: .max)]) }
            return dropped
        }
    }

    /// Forgets the channel's retained value (in memory and in the store). Returns whether there
    /// was one, or nil if the channel has no log.
    package func clearRetained(_ name: ChannelName) -> Bool? {
        logs.withLock { state in
            guard let log = state.tree.find(name) else { return nil }
            guard let retained = log.retained else { return false }
            log.retained = nil
            if log.options.isPersisted { writer?.enqueue([.dropRetained(channel: name.rawValue, offset: retained.offset)]) }
            return true
        }
    }
}

extension Broker {
    /// Subscribes `session` to `pattern` from the server side (the admin API): live messages
    /// from now on, without the retained values or replay a client's own subscribe gets. The
    /// client is not told; whether it shows the messages is up to its library.
    package func subscribeFromServer(_ session: Session, to pattern: ChannelPattern) -> ServerSubscribeRefusal? {
        if pattern.isMeta || pattern.isService { return .forbidden(.forbiddenChannel(pattern.rawValue)) }
        guard apply([pattern], to: session, subscribing: true) else {
            return session.isClosed ? .unknownClient(.unknownClient) : .tooMany(.tooManySubscriptions(limit: configuration.maxSubscriptionsPerSession))
        }
        return nil
    }

    /// Why a server-side subscribe was refused, with the Bayeux error a client would get.
    package enum ServerSubscribeRefusal: Sendable {
        case forbidden(BayeuxError)
        case unknownClient(BayeuxError)
        case tooMany(BayeuxError)
    }

    /// Removes `session`'s subscription to `pattern`. False if it had none.
    package func unsubscribeFromServer(_ session: Session, from pattern: ChannelPattern) -> Bool {
        guard session.subscriptions.contains(pattern.rawValue) else { return false }
        // As a client's own unsubscribe does: its rate limit goes with it.
        session.setThrottle(pattern, interval: nil)
        return apply([pattern], to: session, subscribing: false)
    }
}

/// The last sorted listing of channel names (`Broker.sortedChannelNames()`), and the counters
/// it was made at.
struct ChannelListing {
    private var names: [ChannelName] = []
    private var logCount = -1
    private var literalChanges: UInt64 = 0

    func names(logCount: Int, literalChanges: UInt64) -> [ChannelName]? {
        logCount == self.logCount && literalChanges == self.literalChanges ? names : nil
    }

    mutating func store(_ names: [ChannelName], logCount: Int, literalChanges: UInt64) {
        self.names = names
        self.logCount = logCount
        self.literalChanges = literalChanges
    }
}

extension RandomAccessCollection {
    /// The first index whose element satisfies `predicate`, in a collection where every
    /// element that does comes after every element that does not: a binary search.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Index {
        var low = startIndex
        var count = self.count
        while count > 0 {
            let half = count / 2
            let middle = index(low, offsetBy: half)
            if predicate(self[middle]) {
                count = half
            } else {
                low = index(after: middle)
                count -= half + 1
            }
        }
        return low
    }
}
