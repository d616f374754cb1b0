/// One setting's value by precedence: the explicit value (a command-line flag) wins over its
/// environment twin `HERALD_<NAME>`, which wins over the default.
///
/// The environment is a plain dictionary, handed in, so that tests and embedding services
/// decide what it holds.
struct SettingLookup {
    /// Every setting's environment variable is this prefix and the setting's name.
    static let environmentPrefix = "HERALD_"

    var environment: [String: String]

    func text(_ explicit: String?, _ name: String, default fallback: String) -> String {
        explicit ?? environment[Self.environmentPrefix + name] ?? fallback
    }

    func optionalText(_ explicit: String?, _ name: String) -> String? {
        explicit ?? environment[Self.environmentPrefix + name]
    }

    /// An environment value that is not an integer is an error naming the variable, never
    /// silently the default.
    func integer(_ explicit: Int?, _ name: String, default fallback: Int) throws(HeraldConfigurationError) -> Int {
        if let explicit { return explicit }
        let variable = Self.environmentPrefix + name
        guard let text = environment[variable] else { return fallback }
        guard let value = Int(text) else { throw .notAnInteger(variable: variable, text: text) }
        return value
    }

    /// `true`/`false` (or `1`/`0`, any case); anything else is an error naming the variable.
    func boolean(_ explicit: Bool?, _ name: String, default fallback: Bool) throws(HeraldConfigurationError) -> Bool {
        if let explicit { return explicit }
        let variable = Self.environmentPrefix + name
        guard let text = environment[variable] else { return fallback }
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw .notABoolean(variable: variable, text: text)
        }
    }
}
