internal import Foundation
internal import HeraldProtocol
internal import Yams

/// Turns what Yams reads into the JSON model, so that a YAML configuration file means exactly
/// what the same JSON file means and one parser (`ChannelPolicyTable.parse`) checks both.
enum YAMLConversion {
    /// A YAML value with no JSON equivalent; `description` says where in the document.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads a YAML document into the JSON model; `nil` (an empty document) becomes `.null`.
    static func parse(_ text: String) throws -> JSONValue {
        let root = try Yams.compose(yaml: text)
        if let root { try checkKeys(root, at: "") }
        return try jsonValue(fromYAML: root?.any, at: "")
    }

    /// Yams makes every mapping key a string, and stops the whole process (a force unwrap)
    /// on a key that is not a scalar, such as `? [a, b]`. Such keys are refused here, on the
    /// node tree, before Yams constructs any value. (Scalar keys that are not strings, `1:`
    /// or `true:`, arrive as their text and fail as an unknown setting or channel pattern.)
    static func checkKeys(_ node: Node, at path: String) throws(Failure) {
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard let name = key.scalar?.string else { throw Failure(description: "\(path): keys must be strings") }
                try checkKeys(value, at: "\(path).\(name)")
            }
        case .sequence(let sequence):
            for (offset, item) in sequence.enumerated() {
                try checkKeys(item, at: "\(path)[\(offset)]")
            }
        case .scalar, .alias:
            break
        }
    }

    /// Converts a value as `Yams.load(yaml:)` returns it (`Node.any`). `path` is where the value sits in the
    /// document (`.channels./stocks/**`), empty for the root; it prefixes error messages.
    static func jsonValue(fromYAML value: Any?, at path: String) throws(Failure) -> JSONValue {
        switch value {
        case nil, is NSNull: return .null
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(i)
        case let d as Double: return .number(String(d))
        case let s as String: return .string(s)
        case let a as [Any]:
            var items: [JSONValue] = []
            items.reserveCapacity(a.count)
            for (offset, element) in a.enumerated() {
                items.append(try jsonValue(fromYAML: element, at: "\(path)[\(offset)]"))
            }
            return .array(items)
        case let m as [String: Any]:
            var members: [(String, JSONValue)] = []
            members.reserveCapacity(m.count)
            for key in m.keys.sorted() {
                members.append((key, try jsonValue(fromYAML: m[key], at: "\(path).\(key)")))
            }
            return .object(JSONObject(members))
        case let m as [AnyHashable: Any]:
            var members: [(String, JSONValue)] = []
            for (key, item) in m {
                guard let key = key.base as? String else { throw Failure(description: "\(path): keys must be strings") }
                members.append((key, try jsonValue(fromYAML: item, at: "\(path).\(key)")))
            }
            return .object(JSONObject(members.sorted { $0.0 < $1.0 }))
        default:
            throw Failure(description: "\(path.isEmpty ? "document" : path): unsupported YAML value \(String(describing: value))")
        }
    }
}
