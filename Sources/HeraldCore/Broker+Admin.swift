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
            candidates = index.withLock { $0.match(channel) }
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
        if writer != nil, logsChannels, configuration.channels.options(for: channel)?.durable == true {
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
