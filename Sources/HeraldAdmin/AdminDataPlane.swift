/// What the admin API asks of the data plane, which it does not import: the listener's
/// connection counts, and whether it is serving.
public struct AdminDataPlane: Sendable {
    /// Open connections by transport (`websocket`, `http`), O(1).
    public var connections: @Sendable () -> [String: Int]
    /// The data listener is bound (and the store was opened before it was).
    public var isReady: @Sendable () -> Bool

    public init(connections: @escaping @Sendable () -> [String: Int], isReady: @escaping @Sendable () -> Bool) {
        self.connections = connections
        self.isReady = isReady
    }
}
