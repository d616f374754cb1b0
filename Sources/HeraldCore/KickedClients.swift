import DequeModule

/// The clientIds an operator disconnected recently, with the reason, so that the client's
/// next `/meta/connect` is told why and not to come back (`402:<reason>:Unknown client`,
/// `reconnect: none`) instead of being invited to handshake again. A WebSocket client learns
/// it from the close frame too, but Faye's and CometD's clients only read Bayeux replies, and a
/// long-poller between two connects has nothing held to answer. Bounded in count and time:
/// the oldest are forgotten first.
package struct KickedClients {
    let capacity: Int
    let keepNanoseconds: UInt64
    private var reasons: [String: String] = [:]
    private var order: Deque<(id: String, at: UInt64)> = []

    package init(capacity: Int = 10_000, keepNanoseconds: UInt64) {
        self.capacity = capacity
        self.keepNanoseconds = keepNanoseconds
    }

    package mutating func insert(_ id: String, reason: String, now: UInt64) {
        forget(before: now)
        if reasons.updateValue(reason, forKey: id) == nil { order.append((id, now)) }
        while order.count > capacity, let oldest = order.popFirst() { reasons[oldest.id] = nil }
    }

    package mutating func reason(for id: String, now: UInt64) -> String? {
        forget(before: now)
        return reasons[id]
    }

    private mutating func forget(before now: UInt64) {
        while let oldest = order.first, now &- oldest.at > keepNanoseconds {
            order.removeFirst()
            reasons[oldest.id] = nil
        }
    }
}
