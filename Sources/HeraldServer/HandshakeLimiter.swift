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
    private let buckets = Mutex<[String: TokenBucket]>([:])
    /// Buckets kept before full ones are forgotten.
    static let pruneAbove = 10_000

    init(configuration: ServerConfiguration) {
        perConnection = configuration.handshakesPerSecondPerConnection
        perIP = configuration.handshakesPerSecondPerIP
        limitLoopback = configuration.rateLimitLoopback
    }

    func connectionBucket() -> TokenBucket { TokenBucket(burst: 2 * perConnection) }

    /// Admits one handshake from `address` on the connection that owns `bucket`, or says
    /// which limit refuses it.
    func admit(from address: SocketAddress?, connection bucket: inout TokenBucket) -> Limit? {
        let now = NIODeadline.now()
        if perConnection > 0, !bucket.take(rate: perConnection, burst: 2 * perConnection, now: now) {
            return .handshakeRateConnection
        }
        guard perIP > 0, let address, let ip = address.ipAddress, limitLoopback || !Self.isLoopback(address) else { return nil }
        let admitted = buckets.withLock { buckets -> Bool in
            if buckets.count > Self.pruneAbove {
                buckets = buckets.filter { !$0.value.isFull(rate: perIP, burst: 2 * perIP, now: now) }
            }
            return buckets[ip, default: TokenBucket(burst: 2 * perIP, now: now)].take(rate: perIP, burst: 2 * perIP, now: now)
        }
        return admitted ? nil : .handshakeRateIP
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
