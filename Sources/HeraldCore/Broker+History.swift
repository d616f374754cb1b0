import HeraldProtocol
import NIOCore

/// Channel logs: offsets, epochs, history and retained values (configuration `channels`).
///
/// Publishes to logged channels, and subscribes while any channel is logged, run under one
/// lock (`logs`) from offset assignment to the last enqueue. So a new subscriber's retained or
/// replayed messages and the live ones that follow meet without a gap or a duplicate: a
/// publish is either wholly before the snapshot (and in it) or wholly after the subscription
/// (and delivered live). Lock order: `logs`, then a session, then `index`.
struct LogState {
    private(set) var tree = ChannelLogTree()
    /// The logs whose options set a TTL: the only ones `expireLogs()` has to visit.
    private(set) var expiring: [ChannelLog] = []

    /// Logs in `tree` (`BrokerConfiguration.maxLoggedChannels`).
    var count: Int { tree.count }

    mutating func insert(_ log: ChannelLog) {
        tree.insert(log)
        if log.options.historyTTLMilliseconds != nil || log.options.retainedTTLMilliseconds != nil { expiring.append(log) }
    }
}

/// A client's replay position (the `replay` extension, Salesforce semantics).
enum ReplayPosition: Equatable {
    /// `-1`: only new messages (the default).
    case newOnly
    /// `-2`: everything still in history, then new ones.
    case everything
    /// `N` or `{"offset":N,"epoch":"E"}`: everything after offset N.
    case after(UInt64, epoch: String?)

    init?(_ value: JSONValue) {
        switch value {
        case .number:
            guard let n = value.intValue else { return nil }
            switch n {
            case -1: self = .newOnly
            case -2: self = .everything
            case 0...: self = .after(UInt64(n), epoch: nil)
            default: return nil
            }
        case .object(let object):
            guard let n = object["offset"]?.intValue, n >= 0 else { return nil }
            let epoch = object["epoch"]?.stringValue
            if object["epoch"] != nil && epoch == nil { return nil }
            self = .after(UInt64(n), epoch: epoch)
        default:
            return nil
        }
    }
}

extension Broker {
    var logsChannels: Bool { !configuration.channels.isEmpty }

    /// Loads retained values, history, offsets and epochs from the store. Call once, before
    /// serving. After an unclean shutdown, offsets jump by `offsetGapAfterCrash` so that an
    /// offset handed out but not committed before the crash is never handed out again.
    public func restore() async throws {
        if let cluster {
            try await cluster.start(restore: { self.seed($0, cleanShutdown: true) }, deliver: { self.applyCluster($0) })
            return
        }
        guard let writer else { return }
        let recovery = try await writer.store.open()
        let expiredWrites = seed(recovery.channels, cleanShutdown: recovery.cleanShutdown)
        if !expiredWrites.isEmpty { writer.enqueue(expiredWrites) }
    }

    /// Makes the logs of `channels` (from the store, or the cluster's shared store) and
    /// returns the store writes their TTLs call for. Only channels whose options keep them
    /// are restored: `persist` with a local store; every logged channel in a cluster.
    @discardableResult
    func seed(_ channels: [StoredChannel], cleanShutdown: Bool) -> [StoreWrite] {
        let now = clock.nowMillisecondsSince1970()
        var restored = 0
        var expiredWrites: [StoreWrite] = []
        logs.withLock { state in
            for stored in channels {
                guard let name = ChannelName(stored.name), let options = configuration.channels.options(for: name) else { continue }
                guard cluster == nil ? options.isPersisted : options.isLogged else { continue }
                let gap: UInt64 = cleanShutdown ? 0 : Self.offsetGapAfterCrash
                let log = ChannelLog(name: name, options: options, epoch: stored.epoch, nextOffset: stored.lastOffset + 1 + gap)
                for message in stored.history.suffix(options.historySize) { log.history.append(message) }
                if options.retain { log.retained = stored.retained }
                let expired = log.expire(nowMilliseconds: now)
                if cluster == nil { expiredWrites += expired }
                state.insert(log)
                restored += 1
            }
        }
        logger.info("message store restored", metadata: ["channels": "\(restored)", "clean": "\(cleanShutdown)"])
        return expiredWrites
    }

    /// How far offsets jump after a crash (see `restore()`).
    public static let offsetGapAfterCrash: UInt64 = 1_000_000

    /// Commits what is queued and closes the store, marking a clean shutdown.
    package func closeStore() async {
        guard let writer else { return }
        writer.finish()
        await writer.commitRemaining()
        do {
            try await writer.store.close()
        } catch {
            logger.error("message store close failed", metadata: ["error": "\(error)"])
        }
    }

    /// Runs the store's group-commit loop until `closeStore()`.
    package func runStoreWriter() async {
        await writer?.run()
    }

    /// Messages committed to the store so far, and commits (a commit holds many messages).
    public var storeStatistics: (writes: Int, commits: Int, failures: Int) {
        guard let writer else { return (0, 0, 0) }
        return (writer.committedWrites.load(ordering: .relaxed), writer.commits.load(ordering: .relaxed), writer.failures.load(ordering: .relaxed))
    }

    /// Drops history and retained values past their TTLs. Called by `BrokerService` every
    /// second. It visits only the logs with a TTL, and takes the lock for a chunk of them at a
    /// time: publishes and admin reads wait for one chunk, not for a walk over every channel
    /// (with 100,000 channels the walk held the lock for about 40 ms).
    func expireLogs() {
        guard logsChannels else { return }
        let now = clock.nowMillisecondsSince1970()
        let expiring = logs.withLock { $0.expiring }
        var writes: [StoreWrite] = []
        for start in stride(from: 0, to: expiring.count, by: Self.expiryChunk) {
            logs.withLock { _ in
                for log in expiring[start..<min(expiring.count, start + Self.expiryChunk)] {
                    let expired = log.expire(nowMilliseconds: now)
                    if log.options.isPersisted { writes += expired }
                }
            }
        }
        if !writes.isEmpty { writer?.enqueue(writes) }
    }

    /// Logs expired per hold of the `logs` lock.
    static let expiryChunk = 512

    /// The log of `name`, created with a fresh epoch if needed; nil if that would pass
    /// `maxLoggedChannels`. Lock `logs` first.
    func log(_ name: ChannelName, options: ChannelPolicy, in state: inout LogState) -> ChannelLog? {
        if let existing = state.tree.find(name) { return existing }
        guard state.count < configuration.maxLoggedChannels else { return nil }
        let log = ChannelLog(name: name, options: options, epoch: cluster?.epoch ?? ChannelLog.newEpoch())
        state.insert(log)
        return log
    }

    /// Why a channel gets no log: the limit.
    var tooManyLoggedChannels: BayeuxError {
        BayeuxError(code: 503, args: [String(configuration.maxLoggedChannels)], message: "Too many channels with retained values or history")
    }

    /// Publishes to a logged channel: assigns the offset, logs, writes behind, and routes, all
    /// under the logs lock. A `durable` channel with a store logs and routes the message only
    /// once it is committed (`commitDurable`): no subscriber sees, and no history or retained
    /// value holds, a message whose publisher is told it failed.
    func publishLogged(_ delivery: Delivery, options: ChannelPolicy, onCommit: StoreWriter.Completion?) -> PublishOutcome {
        let now = clock.nowMillisecondsSince1970()
        return logs.withLock { state in
            guard let log = log(delivery.channel, options: options, in: &state) else {
                return PublishOutcome(delivered: 0, awaitingCommit: false, refusal: tooManyLoggedChannels)
            }
            expire(log, now: now)
            let message = StoredMessage(offset: log.nextOffset, data: delivery.data, timestampMilliseconds: now, ext: delivery.ext)
            log.nextOffset += 1
            var delivery = delivery
            delivery.ext = log.ext(offset: message.offset, on: delivery.ext)
            let position = (message.offset, log.epoch)
            guard options.isPersisted, let writer else {
                log.append(message)
                return PublishOutcome(delivered: route(delivery, options: options), awaitingCommit: false, position: position)
            }
            let write = StoreWrite.append(channel: log.name.rawValue, epoch: log.epoch, message: message, historyFrom: log.historyStart(afterAppending: message.offset), retain: options.retain)
            // A store that is closing takes no more writes: the message is refused, not
            // delivered, since it could not be kept and the next start would hand its offset
            // out again.
            let refused = PublishOutcome(delivered: 0, awaitingCommit: false, refusal: .publishFailed("the server is shutting down"))
            if options.durable {
                let accepted = writer.enqueue([write]) { [self, delivery] committed in
                    commitDurable(message, delivery: delivery, options: options, committed: committed)
                    onCommit?(committed)
                }
                guard accepted else { return refused }
                log.uncommitted.append(message.offset)
                return PublishOutcome(delivered: 0, awaitingCommit: onCommit != nil, position: position)
            }
            guard writer.enqueue([write]) else { return refused }
            log.append(message)
            return PublishOutcome(delivered: route(delivery, options: options), awaitingCommit: false, position: position)
        }
    }

    /// A durable publish's commit completed (in offset order: the writer completes commits in
    /// the order they were queued). Committed, the message joins the history and reaches the
    /// subscribers, under the logs lock, so that a subscribe's catch-up and the live messages
    /// after it still have no gap and no duplicate. Not committed, its offset stays unused.
    func commitDurable(_ message: StoredMessage, delivery: Delivery, options: ChannelPolicy, committed: Bool) {
        logs.withLock { state in
            guard let log = state.tree.find(delivery.channel) else { return }
            if let index = log.uncommitted.firstIndex(of: message.offset) { log.uncommitted.remove(at: index) }
            guard committed else { return }
            log.append(message)
            _ = route(delivery, options: options)
        }
    }

    /// Applies `log`'s TTLs and mirrors them in the store. Lock `logs` first.
    func expire(_ log: ChannelLog, now: Int64) {
        let writes = log.expire(nowMilliseconds: now)
        if !writes.isEmpty, log.options.isPersisted { writer?.enqueue(writes) }
    }

    /// A replay request that cannot be honoured without a gap: the reply says so.
    struct ReplayRefusal: Error {
        var error: BayeuxError
        var ext: JSONObject
    }

    /// Checks the replay positions of a subscribe before anything is applied.
    func replayPlan(_ patterns: [ChannelPattern], message: BayeuxMessage, session: Session, state: inout LogState) throws(ReplayRefusal) -> [String: ReplayPosition] {
        let requested = message.ext?["replay"]?.objectValue
        var plan: [String: ReplayPosition] = [:]
        for pattern in patterns {
            guard let value = requested?[pattern.rawValue] ?? session.handshakeReplayPosition(for: pattern.rawValue) else { continue }
            guard let position = ReplayPosition(value) else {
                throw ReplayRefusal(error: BayeuxError(code: 400, args: [pattern.rawValue], message: "Invalid replay position"), ext: JSONObject())
            }
            if position == .newOnly {
                // Only new messages: no retained value either.
                plan[pattern.rawValue] = .newOnly
                continue
            }
            guard pattern.kind == .literal, let name = ChannelName(pattern.rawValue) else {
                throw ReplayRefusal(error: BayeuxError(code: 400, args: [pattern.rawValue], message: "Replay needs a channel name, not a wildcard"), ext: JSONObject())
            }
            guard let options = configuration.channels.options(for: name), options.historySize > 0 else {
                throw ReplayRefusal(error: BayeuxError(code: 400, args: [pattern.rawValue], message: "Channel keeps no history"), ext: JSONObject())
            }
            guard let log = log(name, options: options, in: &state) else {
                throw ReplayRefusal(error: tooManyLoggedChannels, ext: JSONObject())
            }
            expire(log, now: clock.nowMillisecondsSince1970())
            if case .after(let offset, let epoch) = position {
                func refusal(_ error: BayeuxError) -> ReplayRefusal {
                    var herald = JSONObject()
                    herald["recovered"] = .bool(false)
                    herald["channel"] = .string(name.rawValue)
                    herald["epoch"] = .string(log.epoch)
                    herald["oldestOffset"] = .number(String(log.oldestResumableOffset + 1))
                    herald["latestOffset"] = .number(String(log.lastOffset))
                    return ReplayRefusal(error: error, ext: JSONObject([("herald", .object(herald))]))
                }
                if let epoch, epoch != log.epoch {
                    throw refusal(BayeuxError(code: 409, args: [name.rawValue, epoch], message: "Epoch changed"))
                }
                if offset < log.oldestResumableOffset {
                    throw refusal(BayeuxError(code: 410, args: [name.rawValue, String(offset)], message: "Replay position expired"))
                }
                if offset > log.lastOffset {
                    // Ahead of the channel: from another server, or lost in a crash.
                    throw refusal(BayeuxError(code: 410, args: [name.rawValue, String(offset)], message: "Replay position unknown"))
                }
            }
            plan[pattern.rawValue] = position
        }
        return plan
    }

    /// `ext.herald.positions` on a subscribe reply (asked for with `"ext":{"herald":{"positions":true}}`):
    /// for every channel with history the patterns cover, the position that everything the
    /// subscription receives comes after: before its first catch-up message (`first`, from
    /// `catchUp`), else its latest committed offset. A client that loses its connection before
    /// its first message on a channel resumes from there. A channel name gets its log now
    /// (within `maxLoggedChannels`), so its position exists; a wildcard lists the logs that
    /// exist. On a durable channel, offsets still awaiting their commit come after the position.
    func startPositions(_ patterns: [ChannelPattern], first: [String: UInt64], state: inout LogState) -> JSONObject {
        var positions: [(String, JSONValue)] = []
        var listed = Set<String>()
        for pattern in patterns {
            var logs: [ChannelLog]
            if pattern.kind == .literal, let name = ChannelName(pattern.rawValue) {
                guard let options = configuration.channels.options(for: name), options.historySize > 0 else { continue }
                logs = log(name, options: options, in: &state).map { [$0] } ?? []
            } else {
                logs = state.tree.matching(pattern)
            }
            for log in logs where log.options.historySize > 0 && listed.insert(log.name.rawValue).inserted {
                let offset = first[log.name.rawValue].map { $0 - 1 } ?? (log.uncommitted.first ?? log.nextOffset) - 1
                positions.append((log.name.rawValue, .object(JSONObject([("offset", .number(String(offset))), ("epoch", .string(log.epoch))]))))
            }
        }
        return JSONObject(positions)
    }

    /// What a new subscription gets before live messages: replayed history for channels with a
    /// replay position, the retained value of every other matching channel.
    /// `first` gets the offset of each channel's first catch-up message.
    func catchUp(_ patterns: [ChannelPattern], plan: [String: ReplayPosition], state: inout LogState, first: inout [String: UInt64]) -> [ByteBuffer] {
        let now = clock.nowMillisecondsSince1970()
        var out: [ByteBuffer] = []
        let framing = self.framing.withLock { $0 }
        // Each channel catches up once, however many of the patterns match it (as live
        // messages are delivered once); a replayed channel gets no retained value on top.
        var done = Set<String>()
        for pattern in patterns {
            if let position = plan[pattern.rawValue], position != .newOnly {
                done.insert(pattern.rawValue)
            }
        }
        for pattern in patterns {
            if let position = plan[pattern.rawValue] {
                guard let name = ChannelName(pattern.rawValue), let log = state.tree.find(name) else { continue }
                let after: UInt64
                switch position {
                case .newOnly: continue
                case .everything: after = 0
                case .after(let offset, _): after = offset
                }
                for message in log.history where message.offset > after {
                    if first[log.name.rawValue] == nil { first[log.name.rawValue] = message.offset }
                    out.append(log.delivery(message).encoded(allocator: allocator, framing: framing))
                }
                continue
            }
            for log in state.tree.matching(pattern) where done.insert(log.name.rawValue).inserted {
                expire(log, now: now)
                if let retained = log.retained {
                    first[log.name.rawValue] = retained.offset
                    out.append(log.delivery(retained, retained: true).encoded(allocator: allocator, framing: framing))
                }
            }
        }
        return out
    }
}
