internal import Foundation
internal import HeraldCore
internal import HeraldProtocol

/// The configuration file named by `--config` / `HERALD_CONFIG`:
/// `{"channels": {"/stocks/**": {"retain": true, ...}}}`, in JSON, or in YAML when its name
/// ends in `.yaml` or `.yml`.
///
/// Unknown top-level keys are errors rather than ignored: a misspelt `chanels` would
/// otherwise silently retain nothing.
struct ConfigurationFile {
    /// Channel policies by pattern; empty when the file has no `channels`.
    var channels = ChannelPolicyTable()

    /// Reads and checks the file at `path`. Every error names the file.
    init(path: String) throws(HeraldConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(path)
        }
        let root = try Self.parse(String(decoding: data, as: UTF8.self), yaml: path.hasSuffix(".yaml") || path.hasSuffix(".yml"), file: path)
        guard case .object(let object) = root else { throw .notAnObject(path) }
        for key in object.members.map(\.key) where key != "channels" {
            throw .unknownSetting(path, key: key)
        }
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
