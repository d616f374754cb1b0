internal import Foundation
internal import HeraldCore
internal import HeraldProtocol

/// The configuration file named by `--config` / `HERALD_CONFIG`:
/// `{"channels": {"/stocks/**": {"retain": true, ...}}}`, in JSON, or in YAML when its name
/// ends in `.yaml` or `.yml`. It may also name the engine (`"engine"`, `"postgresURL"`,
/// `"nodeName"`), below the flags and the environment.
///
/// Unknown top-level keys are errors rather than ignored: a misspelt `chanels` would
/// otherwise silently retain nothing.
struct ConfigurationFile {
    /// The top-level keys a file may have.
    static let keys = ["channels", "engine", "postgresURL", "nodeName"]

    /// Channel policies by pattern; empty when the file has no `channels`.
    var channels = ChannelPolicyTable()
    /// `sqlite` or `postgres`, if the file says.
    var engine: String?
    /// The cluster's PostgreSQL, if the file says.
    var postgresURL: String?
    /// This node's name in a cluster, if the file says.
    var nodeName: String?

    /// Reads and checks the file at `path`. Every error names the file.
    init(path: String) throws(HeraldConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(path)
        }
        let root = try Self.parse(String(decoding: data, as: UTF8.self), yaml: path.hasSuffix(".yaml") || path.hasSuffix(".yml"), file: path)
        guard case .object(let object) = root else { throw .notAnObject(path) }
        for key in object.members.map(\.key) where !Self.keys.contains(key) {
            throw .unknownSetting(path, key: key)
        }
        func text(_ key: String) throws(HeraldConfigurationError) -> String? {
            guard let value = object[key] else { return nil }
            guard case .string(let text) = value else { throw .invalidFile(path, reason: "\(key): expected a string") }
            return text
        }
        engine = try text("engine")
        postgresURL = try text("postgresURL")
        nodeName = try text("nodeName")
        guard let channels = object["channels"] else { return }
        guard case .object(let map) = channels else { throw .channelsNotAnObject(path) }
        do {
            self.channels = try ChannelPolicyTable.parse(map)
        } catch {
            throw .invalidFile(path, reason: error.description)
        }
    }

    private static func parse(_ text: String, yaml: Bool, file: String) throws(HeraldConfigurationError) -> JSONValue {
        do {
            if yaml {
                return try YAMLConversion.parse(text)
            }
            return try JSONParser.parse(text)
        } catch {
            throw .invalidFile(file, reason: "\(error)")
        }
    }
}
