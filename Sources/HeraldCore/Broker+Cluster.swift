import DequeModule
public import HeraldProtocol
import NIOCore
import Synchronization

/// A broker as one node of a cluster (`ClusterEngine`): publishes to logged channels get their
/// offsets from the shared store, and every node applies the store's ordered stream to its
/// logs and delivers it to its own subscribers.
extension Broker {
    /// Refused while the shared store is unreachable: channels with a log cannot take a
    /// publish without it (their offsets come from it). Channels without one go on.
    static let clusterUnavailable = BayeuxError(code: 503, args: ["cluster"], message: "Message store unavailable")

    /// True without a cluster; with one, while its shared store is reachable and followed.
    public var isClusterReady: Bool { cluster?.isReady ?? true }

    /// The cluster's node name, if this broker is one node of several.
    public var clusterNode: String? { cluster?.node }

    /// The cluster's live nodes (empty without a cluster).
    public func clusterNodes() async throws -> [ClusterNode] {
        try await cluster?.nodes() ?? []
    }

    /// What a node reports in its heartbeat: counts that add up across nodes.
    public var statisticsJSON: JSONObject {
        let s = statistics
        return JSONObject([
            ("sessions", .int(s.sessions)),
            ("subscriptions", .int(s.subscriptions)),
            ("published", .int(s.published)),
            ("delivered", .int(s.delivered)),
        ])
    }

    /// Hands a publish to a logged channel to the shared store. It reaches subscribers (here
    /// too) when the store's stream brings it back, in offset order with the other nodes'.
    func publishClustered(_ delivery: Delivery, options: ChannelPolicy, onCommit: StoreWriter.Completion?) -> PublishOutcome {
        guard let cluster, cluster.isReady else {
            return PublishOutcome(delivered: 0, awaitingCommit: false, refusal: Self.clusterUnavailable)
        }
        let isNew = logs.withLock { $0.tree.find(delivery.channel) == nil && $0.count >= configuration.maxLoggedChannels }
        if isNew { return PublishOutcome(delivered: 0, awaitingCommit: false, refusal: tooManyLoggedChannels) }
        let append = ClusterAppend(channel: delivery.channel, data: delivery.data, ext: delivery.ext, timestampMilliseconds: clock.nowMillisecondsSince1970(), historySize: options.historySize, historyTTLMilliseconds: options.historyTTLMilliseconds, retain: options.retain)
        cluster.append(append) { [logger] result in
            switch result {
            case .success(let offset):
                self.whenApplied(delivery.channel, offset: offset) { onCommit?(true) }
            case .failure(let error):
                logger.warning("cluster append failed", metadata: ["channel.name": "\(delivery.channel)", "error": "\(error)"])
                onCommit?(false)
            }
        }
        return PublishOutcome(delivered: 0, awaitingCommit: onCommit != nil)
    }

    /// The admin API's publish to a logged channel in a cluster: returns once committed, with
    /// the offset the shared store assigned.
    func publishClustered(_ delivery: Delivery) async -> ServerPublishResult {
        var delivery = delivery
        for ext in extensions.withLock({ $0 }) { ext.outgoingDelivery(&delivery) }
        guard let cluster, let options = configuration.channels.options(for: delivery.channel) else { return .refused(Self.clusterUnavailable) }
        guard cluster.isReady else {
            return .refused(Self.clusterUnavailable)
        }
        let append = ClusterAppend(channel: delivery.channel, data: delivery.data, ext: delivery.ext, timestampMilliseconds: clock.nowMillisecondsSince1970(), historySize: options.historySize, historyTTLMilliseconds: options.historyTTLMilliseconds, retain: options.retain)
        let channel = delivery.channel
        return await withCheckedContinuation { continuation in
            cluster.append(append) { result in
                switch result {
                case .success(let offset):
                    self.whenApplied(channel, offset: offset) { continuation.resume(returning: .published(offset: offset, epoch: cluster.epoch)) }
                case .failure: continuation.resume(returning: .refused(.publishFailed("not committed to the message store")))
                }
            }
        }
    }

    /// Runs `done` once this node's log of `channel` holds `offset`: a publish is
    /// acknowledged after its commit *and* after this node applied it, so the publisher finds
    /// it in this node's history at once (the commit's notification may arrive after the
    /// commit returns).
    func whenApplied(_ channel: ChannelName, offset: UInt64, _ done: @escaping @Sendable () -> Void) {
        let applied = logs.withLock { state -> Bool in
            if let log = state.tree.find(channel), log.lastOffset >= offset { return true }
            clusterAcks.withLock { waiting in
                // Offsets are assigned in order and commits complete in order, so this is
                // nearly always an append; keep the order when it is not.
                var list = waiting.removeValue(forKey: channel) ?? []
                if let last = list.last, last.offset > offset {
                    let at = list.firstIndex { $0.offset > offset } ?? list.endIndex
                    list.insert((offset, done), at: at)
                } else {
                    list.append((offset, done))
                }
                waiting[channel] = list
            }
            return false
        }
        if applied { done() }
    }

    /// The acknowledgements waiting for `channel` up to `offset`, removed.
    private func takeAcks(_ channel: ChannelName, upTo offset: UInt64) -> [@Sendable () -> Void] {
        clusterAcks.withLock { waiting in
            guard let first = waiting[channel]?.first, first.offset <= offset, var list = waiting.removeValue(forKey: channel) else { return [] }
            var ready: [@Sendable () -> Void] = []
            while let next = list.first, next.offset <= offset { ready.append(list.removeFirst().done) }
            if !list.isEmpty { waiting[channel] = list }
            return ready
        }
    }

    /// The shared store's stream: logged messages join their channel's log (unless it has
    /// them already) and go to this node's subscribers; live messages from other nodes go to
    /// this node's subscribers.
    func applyCluster(_ messages: [ClusterMessage]) {
        // Acknowledgements are released once per channel and batch, after the batch is applied.
        var applied: [ChannelName: UInt64] = [:]
        defer {
            for (channel, offset) in applied {
                for done in takeAcks(channel, upTo: offset) { done() }
            }
        }
        for message in messages {
            let options = logsChannels ? configuration.channels.options(for: message.channel) : nil
            guard let offset = message.offset else {
                if message.node != cluster?.node {
                    _ = route(Delivery(channel: message.channel, data: message.data, ext: message.ext), options: options, publishedHere: false)
                }
                continue
            }
            guard let options, options.isLogged else { continue }
            logs.withLock { state in
                guard let log = log(message.channel, options: options, in: &state) else { return }
                guard offset > log.lastOffset else { return }
                let stored = StoredMessage(offset: offset, data: message.data, timestampMilliseconds: message.timestampMilliseconds, ext: message.ext)
                log.nextOffset = offset + 1
                log.append(stored)
                _ = route(log.delivery(stored), options: options, publishedHere: message.node == cluster?.node)
            }
            applied[message.channel] = max(applied[message.channel] ?? 0, offset)
        }
    }
}
