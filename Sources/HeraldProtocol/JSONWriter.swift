public import NIOCore

extension ByteBuffer {
    /// Writes `value` as compact JSON.
    public mutating func writeJSON(_ value: JSONValue) {
        var out = JSONBytes()
        out.write(value)
        out.flush(into: &self)
    }

    public mutating func writeJSON(_ object: JSONObject) {
        var out = JSONBytes()
        out.write(object)
        out.flush(into: &self)
    }

    /// Writes a JSON string literal. Besides what RFC 8259 requires, U+2028 and U+2029 are
    /// escaped so that the output is also valid JavaScript (JSONP responses).
    public mutating func writeJSONString(_ string: String) {
        var out = JSONBytes()
        out.write(string)
        out.flush(into: &self)
    }
}

/// Compact JSON text built in a plain byte array and written to a `ByteBuffer` at once:
/// appending to an array is much cheaper than a `ByteBuffer` write per token.
struct JSONBytes {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(256) }

    func flush(into buffer: inout ByteBuffer) { buffer.writeBytes(bytes) }

    mutating func write(_ value: JSONValue) {
        switch value {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let b): bytes.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .number(let text): bytes.append(contentsOf: text.utf8)
        case .string(let s): write(s)
        case .raw(let raw): raw.withUnsafeReadableBytes { bytes.append(contentsOf: $0) }
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            var first = true
            for item in items {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                write(item)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            write(object)
        }
    }

    mutating func write(_ object: JSONObject) {
        bytes.append(UInt8(ascii: "{"))
        var first = true
        for member in object.members {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            write(member.key)
            bytes.append(UInt8(ascii: ":"))
            write(member.value)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func write(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        let plain = string.withUTF8 { utf8 -> Bool in
            for byte in utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == 0xE2 {
                return false
            }
            bytes.append(contentsOf: utf8)
            return true
        }
        if !plain {
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": bytes.append(contentsOf: #"\""#.utf8)
                case "\\": bytes.append(contentsOf: #"\\"#.utf8)
                case "\n": bytes.append(contentsOf: #"\n"#.utf8)
                case "\r": bytes.append(contentsOf: #"\r"#.utf8)
                case "\t": bytes.append(contentsOf: #"\t"#.utf8)
                case "\u{2028}": bytes.append(contentsOf: #"\u2028"#.utf8)
                case "\u{2029}": bytes.append(contentsOf: #"\u2029"#.utf8)
                default:
                    if scalar.value < 0x20 {
                        bytes.append(contentsOf: #"\u00"#.utf8)
                        bytes.append(hex[Int(scalar.value >> 4)])
                        bytes.append(hex[Int(scalar.value & 0xF)])
                    } else {
                        bytes.append(contentsOf: String(scalar).utf8)
                    }
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// Whether `string` goes between quotes as it is: no quote, backslash or control
    /// character, and nothing `writeJSONString` escapes for JavaScript (U+2028, U+2029).
    public static func isPlainString(_ string: String) -> Bool {
        var string = string
        return string.withUTF8 { utf8 in
            !utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == 0xE2 }
        }
    }

    /// The compact JSON text of this value.
    public var jsonText: String {
        var buffer = ByteBuffer()
        buffer.writeJSON(self)
        return String(buffer: buffer)
    }
}
