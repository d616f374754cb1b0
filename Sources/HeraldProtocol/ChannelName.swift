/// A concrete Bayeux channel name such as `/stocks/AAPL`: no wildcards.
///
/// Grammar (Bayeux 1.0 §2.2, widened to CometD's character set so that dotted names work):
/// `"/" segment *("/" segment)`, each segment one or more of `A-Z a-z 0-9` and
/// `- _ ! ~ ( ) $ @ . # + { } space`. Empty segments are invalid, and `*` may appear only as
/// a whole final segment of a `ChannelPattern`.
public struct ChannelName: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// Longest accepted channel name, in UTF-8 bytes.
    public static let maxBytes = 512
    /// Most segments a channel name may have.
    public static let maxSegments = 32

    public let rawValue: String
    public let segments: [Substring]

    public init?(_ rawValue: String) {
        guard let segments = ChannelName.split(rawValue), !segments.contains(where: { $0 == "*" || $0 == "**" }) else {
            return nil
        }
        self.rawValue = rawValue
        self.segments = segments
    }

    public var description: String { rawValue }

    /// `/meta/**`: protocol channels, never delivered to subscribers.
    public var isMeta: Bool { segments[0] == "meta" }

    /// `/service/**`: request/response with the server, never broadcast (Bayeux 1.0 §2.2.3).
    public var isService: Bool { segments[0] == "service" }

    public static func < (lhs: ChannelName, rhs: ChannelName) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Splits and checks a channel name; `*` and `**` segments are returned as they are and
    /// checked by the caller.
    static func split(_ raw: String) -> [Substring]? {
        guard raw.utf8.count >= 2, raw.utf8.count <= maxBytes, raw.utf8.first == UInt8(ascii: "/") else { return nil }
        let segments = raw.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count <= maxSegments else { return nil }
        for segment in segments {
            guard !segment.isEmpty else { return nil }
            if segment == "*" || segment == "**" { continue }
            for byte in segment.utf8 where !isAllowed(byte) { return nil }
        }
        return segments
    }

    @inline(__always)
    static func isAllowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "!"), UInt8(ascii: "~"), UInt8(ascii: "("), UInt8(ascii: ")"),
            UInt8(ascii: "$"), UInt8(ascii: "@"), UInt8(ascii: "."), UInt8(ascii: "#"), UInt8(ascii: "+"), UInt8(ascii: "{"),
            UInt8(ascii: "}"), UInt8(ascii: " "):
            return true
        default:
            return false
        }
    }
}

/// A subscription pattern: a channel name, optionally ending in `*` (one more segment) or
/// `**` (one or more segments).
public struct ChannelPattern: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Matches exactly one channel.
        case literal
        /// `/a/*` matches `/a/b` but not `/a` or `/a/b/c`.
        case singleWildcard
        /// `/a/**` matches `/a/b` and `/a/b/c` but not `/a`.
        case deepWildcard
    }

    public let rawValue: String
    /// The literal segments before any wildcard.
    public let prefix: [Substring]
    public let kind: Kind

    public init?(_ rawValue: String) {
        guard var segments = ChannelName.split(rawValue) else { return nil }
        // A wildcard is allowed only as the last segment: `/a/*/b` is invalid (Faye 405).
        if let wildcard = segments.dropLast().first(where: { $0 == "*" || $0 == "**" }) {
            _ = wildcard
            return nil
        }
        switch segments.last {
        case "*": kind = .singleWildcard; segments.removeLast()
        case "**": kind = .deepWildcard; segments.removeLast()
        default: kind = .literal
        }
        self.rawValue = rawValue
        self.prefix = segments
    }

    public var description: String { rawValue }
    public var isWildcard: Bool { kind != .literal }
    public var isMeta: Bool { prefix.first == "meta" }
    public var isService: Bool { prefix.first == "service" }

    /// Whether the channel `name` is covered by this pattern (Bayeux 1.0 §2.2.1).
    public func matches(_ name: ChannelName) -> Bool {
        let segments = name.segments
        switch kind {
        case .literal:
            return segments.count == prefix.count && segments.elementsEqual(prefix)
        case .singleWildcard:
            return segments.count == prefix.count + 1 && segments.prefix(prefix.count).elementsEqual(prefix)
        case .deepWildcard:
            return segments.count > prefix.count && segments.prefix(prefix.count).elementsEqual(prefix)
        }
    }
}
