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

    /// Checks the name in one pass over its bytes, without splitting it: this runs for every
    /// publish.
    public init?(_ rawValue: String) {
        var raw = rawValue
        guard raw.withUTF8({ ChannelName.isValidName($0) }) else { return nil }
        self.rawValue = raw
    }

    /// The segments, split on demand (the subscription trie and channel logs walk them).
    public var segments: [Substring] {
        rawValue.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
    }

    /// How many segments the name has.
    public var segmentCount: Int {
        rawValue.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "/") ? 1 : 0) }
    }

    /// Calls `body` with each segment in order, without building an array; stops when `body`
    /// returns false. Returns whether it went through every segment.
    @discardableResult
    public func forEachSegment(_ body: (Substring) throws -> Bool) rethrows -> Bool {
        let utf8 = rawValue.utf8
        var start = utf8.index(after: utf8.startIndex)
        var i = start
        while i < utf8.endIndex {
            if utf8[i] == UInt8(ascii: "/") {
                guard try body(rawValue[start..<i]) else { return false }
                start = utf8.index(after: i)
            }
            i = utf8.index(after: i)
        }
        return try body(rawValue[start..<utf8.endIndex])
    }

    public var description: String { rawValue }

    /// `/meta/**`: protocol channels, never delivered to subscribers.
    public var isMeta: Bool { firstSegment(is: "meta") }

    /// `/service/**`: request/response with the server, never broadcast (Bayeux 1.0 §2.2.3).
    public var isService: Bool { firstSegment(is: "service") }

    private func firstSegment(is name: StaticString) -> Bool {
        let utf8 = rawValue.utf8
        let count = name.utf8CodeUnitCount
        guard utf8.count > count, utf8.count == count + 1 || utf8.dropFirst(count + 1).first == UInt8(ascii: "/") else { return false }
        return utf8.dropFirst().prefix(count).elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: count))
    }

    /// `/` segment *(`/` segment), each segment non-empty and of allowed bytes only (so no
    /// wildcard), at most `maxBytes` and `maxSegments`.
    static func isValidName(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count >= 2, bytes.count <= maxBytes, bytes[0] == UInt8(ascii: "/") else { return false }
        var segments = 1
        var segmentLength = 0
        for byte in bytes[1...] {
            if byte == UInt8(ascii: "/") {
                guard segmentLength > 0 else { return false }
                segments += 1
                segmentLength = 0
            } else {
                guard isAllowed(byte) else { return false }
                segmentLength += 1
            }
        }
        return segmentLength > 0 && segments <= maxSegments
    }

    public static func < (lhs: ChannelName, rhs: ChannelName) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Splits and checks a channel name; `*` and `**` segments are returned as they are and
    /// checked by the caller.
    static func split(_ raw: String) -> [Substring]? {
        guard raw.utf8.count >= 2, raw.utf8.count <= maxBytes, raw.utf8.first == UInt8(ascii: "/") else { return nil }
        // Split on the bytes, not on Characters: "/" followed by a combining mark is one
        // Character, and dropping it would drop the mark unchecked (found by the fuzzer:
        // "/\u{749}*" read as "/*").
        var segments: [Substring] = []
        let utf8 = raw.utf8
        var start = utf8.index(after: utf8.startIndex)
        var index = start
        while index < utf8.endIndex {
            if utf8[index] == UInt8(ascii: "/") {
                segments.append(raw[start..<index])
                guard segments.count < maxSegments else { return nil }
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        segments.append(raw[start..<utf8.endIndex])
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

    /// Whether every channel `other` matches is matched by this pattern too: `/a/**` covers
    /// `/a/b`, `/a/*`, `/a/b/**`; `/a/*` covers `/a/b` and `/a/*`; a name covers only itself.
    public func covers(_ other: ChannelPattern) -> Bool {
        switch kind {
        case .literal:
            return other.kind == .literal && other.rawValue == rawValue
        case .singleWildcard:
            if other.kind == .singleWildcard { return other.prefix == prefix }
            return other.kind == .literal && other.prefix.count == prefix.count + 1 && other.prefix.starts(with: prefix)
        case .deepWildcard:
            // Anything strictly below the prefix: a literal or wildcard pattern with at least
            // one segment more, or `**`/`*` at the same prefix.
            guard other.prefix.starts(with: prefix) else { return false }
            return other.prefix.count > prefix.count || other.kind != .literal
        }
    }

    /// Whether some channel matches both patterns.
    public func overlaps(_ other: ChannelPattern) -> Bool {
        // Each pattern fixes its prefix and allows a range of segment counts.
        func counts(_ p: ChannelPattern) -> ClosedRange<Int> {
            switch p.kind {
            case .literal: p.prefix.count...p.prefix.count
            case .singleWildcard: (p.prefix.count + 1)...(p.prefix.count + 1)
            case .deepWildcard: (p.prefix.count + 1)...Int.max
            }
        }
        guard counts(self).overlaps(counts(other)) else { return false }
        let common = min(prefix.count, other.prefix.count)
        return prefix.prefix(common).elementsEqual(other.prefix.prefix(common))
    }

    /// Whether the channel `name` is covered by this pattern (Bayeux 1.0 §2.2.1). Compares
    /// bytes, without splitting `name`.
    public func matches(_ name: ChannelName) -> Bool {
        switch kind {
        case .literal:
            return name.rawValue == rawValue
        case .singleWildcard, .deepWildcard:
            // `rawValue` ends in "/*" or "/**"; `name` must start with what precedes the
            // wildcard, "/" included, and have at least one more segment (exactly one for `*`).
            let stem = rawValue.utf8.dropLast(kind == .singleWildcard ? 1 : 2)
            let utf8 = name.rawValue.utf8
            guard utf8.count > stem.count, utf8.starts(with: stem) else { return false }
            return kind == .deepWildcard || !utf8.dropFirst(stem.count).contains(UInt8(ascii: "/"))
        }
    }
}
