/// `application/x-www-form-urlencoded` and query-string decoding (WHATWG URL §5).
enum FormDecoding {
    /// All values of every parameter, in order. Returns nil for malformed percent-escapes or
    /// values that are not UTF-8.
    static func parameters(_ text: Substring) -> [(String, String)]? {
        var result: [(String, String)] = []
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(parts[0]) else { return nil }
            guard let value = parts.count > 1 ? decode(parts[1]) : "" else { return nil }
            result.append((key, value))
        }
        return result
    }

    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let hi = iterator.next().flatMap(hexValue), let lo = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(hi << 4 | lo)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// A JSONP callback name Faye would accept: `^[a-z_$][a-z0-9_$]*(\.[a-z_$][a-z0-9_$]*)*$`,
    /// case-insensitive, at most 64 characters. Anything else could inject script.
    static func isValidCallback(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64 else { return false }
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard let first = part.utf8.first else { return false }
            func ok(_ c: UInt8, first: Bool) -> Bool {
                switch c {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"), UInt8(ascii: "$"): return true
                case UInt8(ascii: "0")...UInt8(ascii: "9"): return !first
                default: return false
                }
            }
            guard ok(first, first: true), part.utf8.dropFirst().allSatisfy({ ok($0, first: false) }) else { return false }
        }
        return true
    }
}
