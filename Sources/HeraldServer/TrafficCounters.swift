public import Synchronization

/// Bytes the data plane received and sent: WebSocket frames (headers included) and HTTP
/// bodies, not HTTP headers. Counted where the handlers already touch the bytes, once per read
/// and once per flush pass, not per message.
public final class TrafficCounters: Sendable {
    let received = Atomic<Int>(0)
    let sent = Atomic<Int>(0)

    public init() {}

    /// Totals since the server started.
    public var totals: (received: Int, sent: Int) {
        (received.load(ordering: .relaxed), sent.load(ordering: .relaxed))
    }
}
