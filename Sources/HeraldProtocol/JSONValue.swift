public import NIOCore

/// A JSON value as Herald needs it: numbers keep their source text so that ids and
/// 17-digit integers round-trip exactly, and `raw` carries pre-validated JSON bytes
/// (a publisher's `data`) that are written out untouched.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's source text, already validated against RFC 8259's grammar.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
    /// Validated JSON text, written verbatim.
    case raw(ByteBuffer)

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The value as an integer, if it is a number without fraction or exponent that fits.
    public var intValue: Int? {
        if case .number(let text) = self { return Int(text) }
        return nil
    }

    /// The value as a Double, for numbers with fractions (advice timeouts may be sent as 0.0).
    public var doubleValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    public static func int(_ value: Int) -> JSONValue { .number(String(value)) }
}

/// A JSON object that keeps its members in insertion order (replies are easier to read and
/// to compare with Faye and CometD captures that way).
public struct JSONObject: Sendable, Equatable {
    public private(set) var members: [(key: String, value: JSONValue)]

    public init() { self.members = [] }

    /// An empty object with room for `capacity` members without reallocating.
    public init(capacity: Int) {
        self.members = []
        members.reserveCapacity(capacity)
    }

    public init(_ members: [(String, JSONValue)]) {
        self.members = members.map { (key: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { members.isEmpty }

    public subscript(key: String) -> JSONValue? {
        get { members.last(where: { $0.key == key })?.value }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue {
                    members[index].value = newValue
                } else {
                    members.remove(at: index)
                }
            } else if let newValue {
                members.append((key: key, value: newValue))
            }
        }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (l, r) in zip(lhs.members, rhs.members) where l.key != r.key || l.value != r.value {
            return false
        }
        return true
    }
}
