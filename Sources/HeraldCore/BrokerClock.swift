import NIOCore

/// The broker's source of time, in nanoseconds on a monotonic scale. Injected so that
/// session-expiry logic is tested without sleeping.
public protocol BrokerClock: Sendable {
    func nowNanoseconds() -> UInt64
}

/// The monotonic system clock.
public struct SystemBrokerClock: BrokerClock {
    public init() {}
    public func nowNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}
