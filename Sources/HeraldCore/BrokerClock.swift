import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The broker's source of time. Injected so that expiry and TTL logic is tested without
/// sleeping.
public protocol BrokerClock: Sendable {
    /// Monotonic nanoseconds, for session timeouts.
    func nowNanoseconds() -> UInt64
    /// Wall-clock milliseconds since 1970, for message timestamps and TTLs (they survive
    /// restarts, so they cannot be monotonic).
    func nowMillisecondsSince1970() -> Int64
}

extension BrokerClock {
    public func nowMillisecondsSince1970() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// The monotonic system clock.
public struct SystemBrokerClock: BrokerClock {
    public init() {}
    public func nowNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}
