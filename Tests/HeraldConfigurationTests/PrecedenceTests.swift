import HeraldConfiguration
import Logging
import Testing

/// Each setting comes from its flag (an override) if given, else from `HERALD_<NAME>`, else
/// its default: what README promises for `herald serve`.
@Suite struct PrecedenceTests {
    @Test func defaultsWithNothingSet() throws {
        let configuration = try HeraldConfiguration(environment: [:])
        #expect(configuration.server.host == "0.0.0.0")
        #expect(configuration.server.port == 8080)
        #expect(configuration.server.path == "/bayeux")
        #expect(configuration.server.allowedOrigins == [])
        #expect(configuration.broker.maxMessageBytes == 128 * 1024)
        #expect(configuration.broker.maxBatchBytes == 1024 * 1024)
        #expect(configuration.broker.channels.isEmpty)
        #expect(configuration.logLevel == .info)
        #expect(configuration.dataDirectory == "./herald-data")
        #expect(configuration.messageStorePath == "./herald-data/herald.sqlite")
        #expect(configuration.eventLoopThreadCount == 0)
        #expect(configuration.configFile == nil)
        #expect(configuration.adminHost == "127.0.0.1")
        #expect(configuration.adminPort == 8081)
    }

    @Test func environmentWinsOverDefault() throws {
        let configuration = try HeraldConfiguration(environment: [
            "HERALD_HOST": "127.0.0.1",
            "HERALD_PORT": "9000",
            "HERALD_PATH": "/cometd",
            "HERALD_MAX_MESSAGE_BYTES": "1000",
            "HERALD_MAX_PENDING_BYTES": "5000",
            "HERALD_CONNECT_TIMEOUT_MS": "45000",
            "HERALD_LOG_LEVEL": "WARNING",
            "HERALD_DATA_DIR": "/var/lib/herald",
            "HERALD_THREADS": "3",
            "HERALD_ADMIN_PORT": "9001",
        ])
        #expect(configuration.server.host == "127.0.0.1")
        #expect(configuration.server.port == 9000)
        #expect(configuration.server.path == "/cometd")
        #expect(configuration.broker.maxMessageBytes == 1000)
        #expect(configuration.broker.maxPendingBytesPerSession == 5000)
        #expect(configuration.broker.connectTimeoutMilliseconds == 45000)
        #expect(configuration.logLevel == .warning)
        #expect(configuration.messageStorePath == "/var/lib/herald/herald.sqlite")
        #expect(configuration.eventLoopThreadCount == 3)
        #expect(configuration.adminPort == 9001)
    }

    /// The limits from issue 12: each from its flag, else its variable, else its default; a
    /// variable that does not parse names itself.
    @Test func limitSettings() throws {
        let defaults = try HeraldConfiguration(environment: [:])
        #expect(defaults.server.maxConnections == 100_000)
        #expect(defaults.server.maxConnectionsPerIP == 1_000)
        #expect(defaults.server.rateLimitLoopback == false)
        #expect(defaults.broker.maxSessions == 200_000)
        let configuration = try HeraldConfiguration(
            overrides: .init(maxSessions: 7, maxConnectionsPerIP: 9, rateLimitLoopback: true),
            environment: [
                "HERALD_MAX_SESSIONS": "1", "HERALD_MAX_SUBSCRIPTIONS": "12", "HERALD_MAX_CONNECTIONS": "500",
                "HERALD_MAX_CONNECTIONS_PER_IP": "2", "HERALD_HANDSHAKES_PER_SECOND": "3", "HERALD_HANDSHAKES_PER_SECOND_PER_IP": "4",
                "HERALD_RATE_LIMIT_LOOPBACK": "false", "HERALD_MAX_OUTBOUND_BYTES": "8388608", "HERALD_WRITE_STALL_TIMEOUT_S": "5",
                "HERALD_REQUEST_TIMEOUT_S": "6", "HERALD_PING_INTERVAL_S": "7",
            ]
        )
        #expect(configuration.broker.maxSessions == 7)
        #expect(configuration.broker.maxSubscriptionsPerSession == 12)
        #expect(configuration.server.maxConnections == 500)
        #expect(configuration.server.maxConnectionsPerIP == 9)
        #expect(configuration.server.handshakesPerSecondPerConnection == 3)
        #expect(configuration.server.handshakesPerSecondPerIP == 4)
        #expect(configuration.server.rateLimitLoopback == true)
        #expect(configuration.server.maxOutboundBufferBytes == 8_388_608)
        #expect(configuration.server.writeStallTimeoutSeconds == 5)
        #expect(configuration.server.requestTimeoutSeconds == 6)
        #expect(configuration.server.webSocketPingIntervalSeconds == 7)
        #expect(throws: HeraldConfigurationError.notABoolean(variable: "HERALD_RATE_LIMIT_LOOPBACK", text: "yes please")) {
            try HeraldConfiguration(environment: ["HERALD_RATE_LIMIT_LOOPBACK": "yes please"])
        }
        #expect(throws: HeraldConfigurationError.invalidOutboundLimit(minimum: 256 * 1024)) {
            try HeraldConfiguration(environment: ["HERALD_MAX_OUTBOUND_BYTES": "1000"])
        }
        #expect(throws: HeraldConfigurationError.invalidTimeout) {
            try HeraldConfiguration(environment: ["HERALD_WRITE_STALL_TIMEOUT_S": "0"])
        }
    }

    @Test func overrideWinsOverEnvironment() throws {
        let configuration = try HeraldConfiguration(
            overrides: .init(host: "::1", port: 0, logLevel: "debug", maxMessageBytes: 2000),
            environment: ["HERALD_HOST": "127.0.0.1", "HERALD_PORT": "9000", "HERALD_MAX_MESSAGE_BYTES": "1000", "HERALD_LOG_LEVEL": "error"]
        )
        #expect(configuration.server.host == "::1")
        #expect(configuration.server.port == 0)
        #expect(configuration.broker.maxMessageBytes == 2000)
        #expect(configuration.logLevel == .debug)
    }

    /// A flag that is given means its environment twin is never read, even when it is malformed.
    @Test func overrideHidesAMalformedEnvironmentValue() throws {
        let configuration = try HeraldConfiguration(overrides: .init(port: 7000), environment: ["HERALD_PORT": "http"])
        #expect(configuration.server.port == 7000)
    }

    @Test(arguments: ["HERALD_PORT", "HERALD_MAX_BATCH_BYTES", "HERALD_THREADS", "HERALD_MAX_LOGGED_CHANNELS"])
    func nonIntegerEnvironmentValueNamesTheVariable(variable: String) throws {
        let error = #expect(throws: HeraldConfigurationError.self) {
            try HeraldConfiguration(environment: [variable: "64k"])
        }
        #expect(error == .notAnInteger(variable: variable, text: "64k"))
        #expect(error?.description == "\(variable) must be an integer, got '64k'")
        #expect(error?.file == nil)
    }

    @Test func unknownLogLevel() throws {
        let error = #expect(throws: HeraldConfigurationError.self) {
            try HeraldConfiguration(environment: ["HERALD_LOG_LEVEL": "loud"])
        }
        #expect(error == .unknownLogLevel("loud"))
        #expect(error?.description == "unknown log level 'loud'")
    }

    @Test func allowedOriginsAreSplitAndTrimmed() throws {
        let configuration = try HeraldConfiguration(environment: ["HERALD_ALLOWED_ORIGINS": " https://a.example , ,https://b.example"])
        #expect(configuration.server.allowedOrigins == ["https://a.example", "https://b.example"])
    }
}
