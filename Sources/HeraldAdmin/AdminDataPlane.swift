/// What the admin API asks of the data plane, which it does not import: the listener's
/// connection counts, whether it is serving, and (if given) the bytes it received and sent.
public struct AdminDataPlane: Sendable {
    /// Open connections by transport (`websocket`, `http`), O(1).
    public var connections: @Sendable () -> [String: Int]
    /// The data listener is bound (and the store was opened before it was).
    public var isReady: @Sendable () -> Bool
    /// Bytes received and sent (`HeraldServer.traffic.totals`); nil leaves them out of the
    /// stats and metrics.
    public var traffic: (@Sendable () -> (received: Int, sent: Int))?

    public init(
        connections: @escaping @Sendable () -> [String: Int],
        isReady: @escaping @Sendable () -> Bool,
        traffic: (@Sendable () -> (received: Int, sent: Int))? = nil
    ) {
        self.connections = connections
        self.isReady = isReady
        self.traffic = traffic
    }
}
