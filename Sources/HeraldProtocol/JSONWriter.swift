import NIOCore

extension ByteBuffer {
    /// Writes `value` as compact JSON.
    public mutating func writeJSON(_ value: JSONValue) {
        switch value {
        case .null: writeStaticString("null")
        case .bool(let b): _ = b ? writeStaticString("true") : writeStaticString("false")
        case .number(let text): writeString(text)
        case .string(let s): writeJSONString(s)
        case .raw(var bytes): writeBuffer(&bytes)
        case .array(let items):
            writeInteger(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { writeInteger(UInt8(ascii: ",")) }
                writeJSON(item)
            }
            writeInteger(UInt8(ascii: "]"))
        case .object(let object):
            writeJSON(object)
        }
    }

    public mutating func writeJSON(_ object: JSONObject) {
        writeInteger(UInt8(ascii: "{"))
        for (i, member) in object.members.enumerated() {
            if i > 0 { writeInteger(UInt8(ascii: ",")) }
            writeJSONString(member.key)
            writeInteger(UInt8(ascii: ":"))
            writeJSON(member.value)
        }
        writeInteger(UInt8(ascii: "}"))
    }

    /// Writes a JSON string literal. Besides what RFC 8259 requires, U+2028 and U+2029 are
    /// escaped so that the output is also valid JavaScript (JSONP responses).
    public mutating func writeJSONString(_ string: String) {
        writeInteger(UInt8(ascii: "\""))
        var needsEscaping = false
        for byte in string.utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == 0xE2 {
            needsEscaping = true
            break
        }
        if !needsEscaping {
            writeString(string)
        } else {
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": writeStaticString("\\\"")
                case "\\": writeStaticString("\\\\")
                case "\n": writeStaticString("\\n")
                case "\r": writeStaticString("\\r")
                case "\t": writeStaticString("\\t")
                case "\u{2028}": writeStaticString("\\u2028")
                case "\u{2029}": writeStaticString("\\u2029")
                default:
                    if scalar.value < 0x20 {
                        writeStaticString("\\u00")
                        let hex: [UInt8] = Array("0123456789abcdef".utf8)
                        writeInteger(hex[Int(scalar.value >> 4)])
                        writeInteger(hex[Int(scalar.value & 0xF)])
                    } else {
                        writeString(String(scalar))
                    }
                }
            }
        }
        writeInteger(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// The compact JSON text of this value.
    public var jsonText: String {
        var buffer = ByteBuffer()
        buffer.writeJSON(self)
        return String(buffer: buffer)
    }
}
