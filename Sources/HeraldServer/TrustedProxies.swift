public import NIOCore

/// The proxies whose `X-Forwarded-For` Herald believes (`ServerConfiguration.trustedProxies`):
/// addresses or CIDR ranges, IPv4 or IPv6. Behind them, a client's address is the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy, so that a client cannot pick
/// its own address by sending the header: entries left of the first untrusted one are
/// whatever the client wrote. From any other peer the header is ignored.
///
/// Connections from a trusted proxy are exempt from `maxConnectionsPerIP` (every client
/// behind it shares its address); the per-IP handshake rate applies to the forwarded address.
public struct TrustedProxies: Sendable {
    struct Range: Sendable, Equatable {
        let bytes: [UInt8]
        let prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefixLength
            for (a, b) in zip(address, bytes) where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if a & mask != b & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    let ranges: [Range]

    public var isEmpty: Bool { ranges.isEmpty }

    /// Nil when any entry is neither an IP address nor `address/prefix`; `invalid` names it.
    public init?(_ entries: [String], invalid: ((String) -> Void)? = nil) {
        var ranges: [Range] = []
        for entry in entries {
            guard let range = Self.range(entry) else {
                invalid?(entry)
                return nil
            }
            ranges.append(range)
        }
        self.ranges = ranges
    }

    static func range(_ entry: String) -> Range? {
        let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let bytes = Self.bytes(of: first) else { return nil }
        let maximum = bytes.count * 8
        guard parts.count == 2 else { return Range(bytes: bytes, prefixLength: maximum) }
        guard let prefix = Int(parts[1]), (0...maximum).contains(prefix) else { return nil }
        return Range(bytes: bytes, prefixLength: prefix)
    }

    /// 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6.
    static func bytes(of text: String) -> [UInt8]? {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        guard let address = try? SocketAddress(ipAddress: String(text), port: 0) else { return nil }
        return bytes(of: address)
    }

    static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
            return bytes
        case .unixDomainSocket:
            return nil
        }
    }

    public func contains(_ address: SocketAddress) -> Bool {
        guard !ranges.isEmpty, let bytes = Self.bytes(of: address) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The client's address for a request that came on a connection from `peer` with these
    /// `X-Forwarded-For` header values: `peer` itself unless it is a trusted proxy.
    public func client(of peer: SocketAddress?, forwardedFor values: [String]) -> SocketAddress? {
        guard let peer, !values.isEmpty, contains(peer) else { return peer }
        let hops = values.flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces() }
        for hop in hops.reversed() {
            var text = Substring(hop)
            if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
            // Not an address (a name, "unknown", a port appended): the chain cannot be
            // followed further, so the last trusted hop is the client as far as Herald knows.
            guard let address = try? SocketAddress(ipAddress: String(text), port: 0) else { return peer }
            if !contains(address) { return address }
        }
        return peer
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return drop(while: isSpace).reversed().drop(while: isSpace).reversed().reduce(into: Substring()) { $0.append($1) }
    }
}
