/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// It builds `JSONValue`s for the Bayeux envelope but can also *skip* a value: it checks the
/// value completely (grammar, UTF-8, nesting depth) without building anything, and reports
/// where it lies. That is how a publisher's `data` is validated once and then forwarded as the
/// very bytes it arrived as.
public struct JSONParser {
    public struct Error: Swift.Error, Equatable, CustomStringConvertible, Sendable {
        public var offset: Int
        public var reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    /// The deepest nesting accepted; deeper input is rejected rather than risking the stack.
    public static let maxNestingDepth = 64

    let bytes: UnsafeRawBufferPointer
    public private(set) var position: Int
    var depth = 0

    public init(bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    public var isAtEnd: Bool { position >= bytes.count }

    /// Moves to `position`, which the caller has already scanned.
    mutating func skip(to position: Int) { self.position = position }

    func fail(_ reason: String) -> Error { Error(offset: position, reason: reason) }

    @inline(__always)
    public func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    @inline(__always)
    public mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    public mutating func expect(_ byte: UInt8) throws {
        skipWhitespace()
        guard peek() == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
        position += 1
    }

    /// Consumes `byte` (after whitespace) if it is next.
    public mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        if peek() == byte {
            position += 1
            return true
        }
        return false
    }

    // MARK: Building values

    public mutating func parseValue() throws -> JSONValue {
        skipWhitespace()
        guard let byte = peek() else { throw fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return .object(try parseObject())
        case UInt8(ascii: "["):
            try enter()
            position += 1
            var items: [JSONValue] = []
            if consume(UInt8(ascii: "]")) { depth -= 1; return .array(items) }
            repeat {
                items.append(try parseValue())
            } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
            depth -= 1
            return .array(items)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            let range = try scanNumber()
            return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self))
        }
    }

    public mutating func parseObject() throws -> JSONObject {
        try expect(UInt8(ascii: "{"))
        try enter()
        var object = JSONObject()
        if consume(UInt8(ascii: "}")) { depth -= 1; return object }
        repeat {
            skipWhitespace()
            let key = try parseString()
            try expect(UInt8(ascii: ":"))
            object[key] = try parseValue()
        } while consume(UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
        depth -= 1
        return object
    }

    public mutating func parseString() throws -> String {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string") }
        position += 1
        let start = position
        // Fast path: no escapes.
        var high: UInt8 = 0
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                position += 1
                // ASCII is valid UTF-8 as it is; `String(validating:)` is generic and not
                // specialised, which costs a metadata lookup per string.
                if high < 0x80 { return String(decoding: slice, as: UTF8.self) }
                guard let s = String(validating: slice, as: UTF8.self) else {
                    throw Error(offset: start, reason: "string is not valid UTF-8")
                }
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw fail("control character in string") }
            high |= b
            position += 1
        }
        // Slow path with escapes.
        var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while true {
            guard let b = peek() else { throw fail("unterminated string") }
            position += 1
            switch b {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw Error(offset: start, reason: "string is not valid UTF-8")
                }
                return s
            case UInt8(ascii: "\\"):
                guard let e = peek() else { throw fail("unterminated escape") }
                position += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard peek() == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                            throw fail("lone surrogate in \\u escape")
                        }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("lone surrogate in \\u escape")
                    }
                    out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default: throw fail("invalid escape")
                }
            default:
                if b < 0x20 { throw fail("control character in string") }
                out.append(b)
            }
        }
    }

    // MARK: Skipping values

    /// Validates the next value completely and returns the byte range it occupies.
    public mutating func skipValue() throws -> Range<Int> {
        skipWhitespace()
        let start = position
        guard let byte = peek() else { throw fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            try enter()
            position += 1
            if !consume(UInt8(ascii: "}")) {
                repeat {
                    skipWhitespace()
                    try skipString()
                    try expect(UInt8(ascii: ":"))
                    _ = try skipValue()
                } while consume(UInt8(ascii: ","))
                try expect(UInt8(ascii: "}"))
            }
            depth -= 1
        case UInt8(ascii: "["):
            try enter()
            position += 1
            if !consume(UInt8(ascii: "]")) {
                repeat {
                    _ = try skipValue()
                } while consume(UInt8(ascii: ","))
                try expect(UInt8(ascii: "]"))
            }
            depth -= 1
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try scanNumber()
        }
        return start..<position
    }

    /// Validates a string (escapes and UTF-8) without building it.
    mutating func skipString() throws {
        guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string") }
        position += 1
        while position < bytes.count {
            let b = bytes[position]
            if b < 0x80 {
                position += 1
                if b == UInt8(ascii: "\"") { return }
                if b < 0x20 { position -= 1; throw fail("control character in string") }
                if b == UInt8(ascii: "\\") {
                    guard let e = peek() else { break }
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        continue
                    case UInt8(ascii: "u"):
                        let v = try hex4()
                        if (0xD800...0xDBFF).contains(v) {
                            guard peek() == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                                throw fail("lone surrogate in \\u escape")
                            }
                            position += 2
                            guard (0xDC00...0xDFFF).contains(try hex4()) else { throw fail("invalid surrogate pair") }
                        } else if (0xDC00...0xDFFF).contains(v) {
                            throw fail("lone surrogate in \\u escape")
                        }
                    default:
                        throw fail("invalid escape")
                    }
                }
            } else {
                try skipUTF8Sequence(lead: b)
            }
        }
        throw fail("unterminated string")
    }

    /// Checks one multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
    mutating func skipUTF8Sequence(lead: UInt8) throws {
        let count: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 1
        case 0xE0: count = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 2
        case 0xED: count = 2; upper = 0x9F
        case 0xF0: count = 3; lower = 0x90
        case 0xF1...0xF3: count = 3
        case 0xF4: count = 3; upper = 0x8F
        default: throw fail("invalid UTF-8")
        }
        guard position + count < bytes.count else { throw fail("truncated UTF-8") }
        let first = bytes[position + 1]
        guard first >= lower && first <= upper else { throw fail("invalid UTF-8") }
        var i = 2
        while i <= count {
            guard bytes[position + i] & 0xC0 == 0x80 else { throw fail("invalid UTF-8") }
            i += 1
        }
        position += count + 1
    }

    // MARK: Pieces

    mutating func enter() throws {
        depth += 1
        if depth > Self.maxNestingDepth { throw fail("nesting deeper than \(Self.maxNestingDepth)") }
    }

    mutating func literal(_ text: StaticString) throws {
        let n = text.utf8CodeUnitCount
        guard position + n <= bytes.count else { throw fail("invalid literal") }
        let ok = text.withUTF8Buffer { lit in
            for i in 0..<n where bytes[position + i] != lit[i] { return false }
            return true
        }
        guard ok else { throw fail("invalid literal") }
        position += n
    }

    mutating func hex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            position += 1
        }
        return v
    }

    /// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`
    mutating func scanNumber() throws -> Range<Int> {
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), isDigit(first) else { throw fail("invalid value") }
        position += 1
        if first != UInt8(ascii: "0") {
            while let c = peek(), isDigit(c) { position += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard let c = peek(), isDigit(c) else { throw fail("invalid number") }
            while let c = peek(), isDigit(c) { position += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            position += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { position += 1 }
            guard let c = peek(), isDigit(c) else { throw fail("invalid number") }
            while let c = peek(), isDigit(c) { position += 1 }
        }
        return start..<position
    }

    @inline(__always)
    func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}

extension JSONParser {
    /// Parses a complete JSON document (used by tests and by small control-plane inputs).
    public static func parse(_ text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { utf8 in
            var parser = JSONParser(bytes: UnsafeRawBufferPointer(utf8))
            let value = try parser.parseValue()
            parser.skipWhitespace()
            guard parser.isAtEnd else { throw parser.fail("trailing characters") }
            return value
        }
    }

    /// Whether `bytes` hold exactly one valid JSON value.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var parser = JSONParser(bytes: bytes)
        guard (try? parser.skipValue()) != nil else { return false }
        parser.skipWhitespace()
        return parser.isAtEnd
    }
}
