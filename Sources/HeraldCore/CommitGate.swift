package import NIOCore
package import Synchronization

/// Holds a batch's replies until its durable publishes are committed (`durable: true`
/// channels): the transport calls `whenCommitted` and writes the replies from the callback.
/// A publish whose commit failed has its reply replaced by a `407` error.
package final class CommitGate: Sendable {
    struct State {
        var outstanding = 0
        var replacements: [Int: ByteBuffer] = [:]
        var callback: (@Sendable ([Int: ByteBuffer]) -> Void)?
        var fired = false
    }
    let state = Mutex(State())

    package init() {}

    func add() {
        state.withLock { $0.outstanding += 1 }
    }

    func complete(replyIndex: Int, failure: ByteBuffer?) {
        let fire = state.withLock { s -> (@Sendable ([Int: ByteBuffer]) -> Void, [Int: ByteBuffer])? in
            s.outstanding -= 1
            if let failure { s.replacements[replyIndex] = failure }
            guard s.outstanding == 0, !s.fired, let callback = s.callback else { return nil }
            s.fired = true
            return (callback, s.replacements)
        }
        if let (callback, replacements) = fire { callback(replacements) }
    }

    /// Runs `callback` (on any thread) once every durable publish of the batch is committed,
    /// with the replies to replace, by index into `BatchResult.replies`.
    package func whenCommitted(_ callback: @escaping @Sendable (_ replacements: [Int: ByteBuffer]) -> Void) {
        let fire = state.withLock { s -> [Int: ByteBuffer]? in
            s.callback = callback
            guard s.outstanding == 0, !s.fired else { return nil }
            s.fired = true
            return s.replacements
        }
        if let fire { callback(fire) }
    }

    /// Applies `replacements` to `replies`.
    package static func apply(_ replacements: [Int: ByteBuffer], to replies: [ByteBuffer]) -> [ByteBuffer] {
        var replies = replies
        for (index, reply) in replacements where index < replies.count { replies[index] = reply }
        return replies
    }
}
