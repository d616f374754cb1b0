import HeraldConfiguration
import HeraldCore
import HeraldProtocol
import Testing

/// The configuration file, in JSON and in YAML, and its error messages: each names the file
/// and, where there is one, the key.
@Suite struct ConfigurationFileTests {
    static let json = #"""
        {
          "channels": {
            "/stocks/**": {"retain": true, "historySize": 1000, "historyTTL": "24h", "retainedTTL": "15m", "persist": true, "slowConsumer": "conflate", "maxFrequency": 2.5},
            "/orders/*":  {"historySize": 10000, "historyTTL": "7d", "durable": true}
          }
        }
        """#

    static let yaml = """
        # The same table as `json`.
        channels:
          /stocks/**:
            retain: true
            historySize: 1000
            historyTTL: 24h
            retainedTTL: 15m
            persist: true
            slowConsumer: conflate
            maxFrequency: 2.5
          "/orders/*":
            historySize: 10000
            historyTTL: 7d
            durable: true
        """

    static func policies(_ table: ChannelPolicyTable) -> [String: ChannelPolicy] {
        Dictionary(uniqueKeysWithValues: table.entries.map { ($0.pattern.description, $0.options) })
    }

    @Test func jsonAndYAMLGiveTheSamePolicyTable() throws {
        try TemporaryDirectory.with { directory in
            let fromJSON = try HeraldConfiguration(overrides: .init(configFile: directory.write("herald.json", Self.json)), environment: [:])
            let fromYAML = try HeraldConfiguration(overrides: .init(configFile: directory.write("herald.yaml", Self.yaml)), environment: [:])
            let fromYML = try HeraldConfiguration(overrides: .init(configFile: directory.write("herald.yml", Self.yaml)), environment: [:])

            let json = Self.policies(fromJSON.broker.channels)
            #expect(json.keys.sorted() == ["/orders/*", "/stocks/**"])
            let stocks = try #require(json["/stocks/**"])
            #expect(stocks.retain && stocks.persist && !stocks.durable)
            #expect(stocks.historySize == 1000)
            #expect(stocks.historyTTLMilliseconds == Int64(24 * 3_600_000))
            #expect(stocks.retainedTTLMilliseconds == Int64(15 * 60_000))
            #expect(stocks.slowConsumer == .conflate)
            #expect(stocks.maxFrequency == 2.5)
            #expect(json["/orders/*"]?.durable == true)
            #expect(json["/orders/*"]?.historySize == 10000)

            #expect(Self.policies(fromYAML.broker.channels) == json)
            #expect(Self.policies(fromYML.broker.channels) == json)
            // Order decides which pattern wins for a channel, so it must match too.
            #expect(fromYAML.broker.channels.entries.map(\.pattern) == fromJSON.broker.channels.entries.map(\.pattern))
        }
    }

    @Test func environmentNamesTheFile() throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("herald.json", Self.json)
            let configuration = try HeraldConfiguration(environment: ["HERALD_CONFIG": file])
            #expect(configuration.configFile == file)
            #expect(configuration.broker.channels.entries.count == 2)
        }
    }

    @Test(arguments: ["json", "yaml"])
    func unknownTopLevelKey(format: String) throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("herald.\(format)", format == "json" ? #"{"chanels": {}}"# : "chanels: {}\n")
            let error = #expect(throws: HeraldConfigurationError.self) {
                try HeraldConfiguration(overrides: .init(configFile: file), environment: [:])
            }
            #expect(error == .unknownSetting(file, key: "chanels"))
            #expect(error?.description == "\(file): unknown setting 'chanels' (known: channels, engine, postgresURL, nodeName)")
            #expect(error?.file == file)
        }
    }

    /// Keys that are not scalars would stop the process inside Yams; they are refused with
    /// the place they were found.
    @Test(arguments: [
        ("? [a, b]\n: 1\n", ": keys must be strings"),
        ("channels:\n  ? {a: 1}\n  : {retain: true}\n", ".channels: keys must be strings"),
        ("channels:\n  /a:\n    history: [{? [x]\n : 1}]\n", ".channels./a.history[0]: keys must be strings"),
    ])
    func yamlKeysMustBeStrings(text: String, reason: String) throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("herald.yaml", text)
            let error = #expect(throws: HeraldConfigurationError.self) {
                try HeraldConfiguration(overrides: .init(configFile: file), environment: [:])
            }
            #expect(error == .invalidFile(file, reason: reason))
            #expect(error?.description == "\(file): \(reason)")
        }
    }

    /// Yams reads a scalar key that is not a string as its text: `1` is then no channel
    /// pattern, and the message says so.
    @Test func yamlNumberKeyIsNoChannelPattern() throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("herald.yaml", "channels:\n  1:\n    retain: true\n")
            let error = #expect(throws: HeraldConfigurationError.self) {
                try HeraldConfiguration(overrides: .init(configFile: file), environment: [:])
            }
            #expect(error?.description == "\(file): channels: '1' is not a valid channel pattern")
        }
    }

    @Test func badChannelOptionNamesTheKey() throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("herald.json", #"{"channels": {"/stocks/**": {"retain": "yes"}}}"#)
            let error = #expect(throws: HeraldConfigurationError.self) {
                try HeraldConfiguration(overrides: .init(configFile: file), environment: [:])
            }
            #expect(error?.description == "\(file): channels./stocks/**.retain: expected true or false")
        }
    }

    @Test func shapeErrors() throws {
        try TemporaryDirectory.with { directory in
            let array = try directory.write("array.json", "[1, 2]")
            #expect(throws: HeraldConfigurationError.notAnObject(array)) {
                try HeraldConfiguration(overrides: .init(configFile: array), environment: [:])
            }
            let channels = try directory.write("channels.yaml", "channels: [a]\n")
            #expect(throws: HeraldConfigurationError.channelsNotAnObject(channels)) {
                try HeraldConfiguration(overrides: .init(configFile: channels), environment: [:])
            }
            let missing = directory.path + "/missing.json"
            let error = #expect(throws: HeraldConfigurationError.self) {
                try HeraldConfiguration(overrides: .init(configFile: missing), environment: [:])
            }
            #expect(error == .unreadableFile(missing))
            #expect(error?.description == "cannot read configuration file \(missing)")
        }
    }

    @Test(arguments: [("herald.json", #"{"channels": "#), ("herald.yaml", "channels: [\n")])
    func syntaxErrorsNameTheFile(name: String, text: String) throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write(name, text)
            let error = #expect(throws: HeraldConfigurationError.self) {
                try HeraldConfiguration(overrides: .init(configFile: file), environment: [:])
            }
            #expect(error?.file == file)
            #expect(error?.description.hasPrefix("\(file): ") == true)
        }
    }

    /// An empty YAML file is a null document, not an object: refused like any other
    /// document that is not a mapping.
    @Test func emptyYAMLIsNotAnObject() throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("herald.yaml", "")
            #expect(throws: HeraldConfigurationError.notAnObject(file)) {
                try HeraldConfiguration(overrides: .init(configFile: file), environment: [:])
            }
        }
    }

    /// A cluster node's engine may come from the file, for a configuration kept in one place;
    /// the environment and the flags still win over it.
    @Test func theEngineFromTheFileBelowEnvironmentAndFlags() throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("herald.yaml", "engine: postgres\npostgresURL: postgres://herald@db:5432/herald\nnodeName: n1\nchannels:\n  /c/*:\n    historySize: 10\n")
            let fromFile = try HeraldConfiguration(overrides: .init(configFile: file), environment: [:])
            #expect(fromFile.engine == .postgres(url: "postgres://herald@db:5432/herald"))
            #expect(fromFile.nodeName == "n1")
            #expect(fromFile.broker.channels.options(for: ChannelName("/c/a")!)?.historySize == 10)

            let fromEnvironment = try HeraldConfiguration(overrides: .init(configFile: file), environment: ["HERALD_POSTGRES_URL": "postgres://other@db2/h", "HERALD_NODE_NAME": "n2"])
            #expect(fromEnvironment.engine == .postgres(url: "postgres://other@db2/h"))
            #expect(fromEnvironment.nodeName == "n2")

            // An empty variable (compose's `${VAR}` with VAR unset) does not hide the file.
            let emptyEnvironment = try HeraldConfiguration(overrides: .init(configFile: file), environment: ["HERALD_ENGINE": "", "HERALD_POSTGRES_URL": "", "HERALD_NODE_NAME": ""])
            #expect(emptyEnvironment.engine == .postgres(url: "postgres://herald@db:5432/herald"))
            #expect(emptyEnvironment.nodeName == "n1")

            let fromFlag = try HeraldConfiguration(overrides: .init(.init(configFile: file), engine: "sqlite", postgresURL: nil, nodeName: nil), environment: ["HERALD_ENGINE": "postgres"])
            #expect(fromFlag.engine == .sqlite)

            let wrongType = try directory.write("bad.json", #"{"engine": 2}"#)
            let error = #expect(throws: HeraldConfigurationError.self) {
                try HeraldConfiguration(overrides: .init(configFile: wrongType), environment: [:])
            }
            #expect(error?.description == "\(wrongType): engine: expected a string")
            let noURL = try directory.write("nourl.json", #"{"engine": "postgres"}"#)
            #expect(throws: HeraldConfigurationError.postgresURLMissing) {
                try HeraldConfiguration(overrides: .init(configFile: noURL), environment: [:])
            }
        }
    }
}
