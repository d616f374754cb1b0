import HeraldCore
import NIOCore
import Synchronization

/// A token bucket: `rate` tokens a second, holding at most `burst`.
struct TokenBucket {
    private var tokens: Double
    private var last: NIODeadline

    init(burst: Int, now: NIODeadline = .now()) {
        tokens = Double(burst)
        last = now
    }

    /// Takes a token if there is one.
    mutating func take(rate: Int, burst: Int, now: NIODeadline) -> Bool {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        last = now
        tokens = min(Double(burst), tokens + elapsed * Double(rate))
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether the bucket would be full at `now`, so that forgetting it changes nothing.
    func isFull(rate: Int, burst: Int, now: NIODeadline) -> Bool {
        tokens + Double((now - last).nanoseconds) / 1e9 * Double(rate) >= Double(burst)
    }
}

/// The handshake rate limits of the data plane (`ServerConfiguration.handshakesPerSecond…`):
/// one bucket per connection, kept by the connection, and one per IP address, kept here.
/// Without them one connection made 199,996 sessions in two seconds with batched handshakes
/// and every legitimate client got `503` until they expired.
final class HandshakeLimiter: Sendable {
    let perConnection: Int
    let perIP: Int
    let limitLoopback: Bool
    private let state = Mutex(Buckets())
    /// Buckets kept before full ones are forgotten.
    static let pruneAbove = 10_000

    private struct Buckets {
        var byAddress: [String: TokenBucket] = [:]
        /// How many were left after the last pruning: the next one waits until there are
        /// twice as many, so that pruning costs O(1) per handshake, amortised, even while an
        /// attacker keeps the map full of fresh addresses.
        var keptAtLastPrune = 0
    }

    init(configuration: ServerConfiguration) {
        perConnection = configuration.handshakesPerSecondPerConnection
        perIP = configuration.handshakesPerSecondPerIP
        limitLoopback = configuration.rateLimitLoopback
    }

    func connectionBucket() -> TokenBucket { TokenBucket(burst: 2 * perConnection) }

    /// Admits one handshake from `address` on the connection that owns `bucket`, or says
    /// which limit refuses it. `viaProxy`: the connection is a trusted proxy's, which carries
    /// many clients' requests, so only the client's address is limited.
    func admit(from address: SocketAddress?, connection bucket: inout TokenBucket, viaProxy: Bool = false) -> Limit? {
        let now = NIODeadline.now()
        if perConnection > 0, !viaProxy, !bucket.take(rate: perConnection, burst: 2 * perConnection, now: now) {
            return .handshakeRateConnection
        }
        guard perIP > 0, let address, let key = Self.addressKey(address), limitLoopback || !Self.isLoopback(address) else { return nil }
        let admitted = state.withLock { s -> Bool in
            if s.byAddress.count > max(Self.pruneAbove, 2 * s.keptAtLastPrune) {
                s.byAddress = s.byAddress.filter { !$0.value.isFull(rate: perIP, burst: 2 * perIP, now: now) }
                s.keptAtLastPrune = s.byAddress.count
            }
            return s.byAddress[key, default: TokenBucket(burst: 2 * perIP, now: now)].take(rate: perIP, burst: 2 * perIP, now: now)
        }
        return admitted ? nil : .handshakeRateIP
    }

    /// What the per-address limits count by: an IPv4 address, or an IPv6 address's /64 (one
    /// host or site is given a whole /64, so a full address would let it pick 2^64 of them).
    static func addressKey(_ address: SocketAddress) -> String? {
        guard let bytes = TrustedProxies.bytes(of: address) else { return nil }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return bytes.prefix(8).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let v4): return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes == Array(repeating: 0, count: 15) + [1] { return true }
            // ::ffff:127.x.x.x
            return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
        case .unixDomainSocket: return true
        }
    }
}
