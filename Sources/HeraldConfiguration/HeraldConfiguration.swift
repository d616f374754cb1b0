internal import Foundation
public import HeraldAdmin
public import HeraldCore
public import HeraldServer
public import Logging

/// Everything `herald serve` resolves before it starts, from explicit values (its flags), the
/// environment (`HERALD_<NAME>`) and the configuration file, in that order of precedence.
///
/// A library rather than code in the executable, so that an embedding service and the admin
/// API read a deployment's settings exactly as `herald serve` does: same names, same
/// defaults, same checks, same error messages.
public struct HeraldConfiguration: Sendable {
    /// Broker limits and timeouts, and the channel policies from the configuration file.
    public var broker: BrokerConfiguration
    /// The data-plane listener.
    public var server: ServerConfiguration
    /// Directory for persistent state (`--data-dir`); not created here.
    public var dataDirectory: String
    /// Level for the process's log handler; only the executable bootstraps logging.
    public var logLevel: Logger.Level
    /// Event-loop threads (`--threads`); 0 or less means one per CPU the process may run on,
    /// which the caller counts.
    public var eventLoopThreadCount: Int
    /// The configuration file that was read, if one was named.
    public var configFile: String?
    /// The admin API listener: address, port and bearer token.
    public var admin: AdminConfiguration
    /// The data listener's certificate (`--tls-cert`, `--tls-key`), also in `server.tls`.
    public var dataTLS: TLSCertificates?
    /// The admin API's certificate (`--admin-tls-cert`, `--admin-tls-key`, by default the
    /// data listener's); `admin.tls` presents it.
    public var adminTLS: TLSCertificates?

    /// The certificates to read again on SIGHUP, each once.
    public var tlsCertificates: [TLSCertificates] {
        var all: [TLSCertificates] = []
        for certificates in [dataTLS, adminTLS].compactMap({ $0 }) where !all.contains(where: { $0 === certificates }) {
            all.append(certificates)
        }
        return all
    }
    /// Admin API bind address (`admin.host`).
    public var adminHost: String {
        get { admin.host }
        set { admin.host = newValue }
    }
    /// Admin API port (`admin.port`).
    public var adminPort: Int {
        get { admin.port }
        set { admin.port = newValue }
    }

    /// Where retained values, history and offsets live.
    public enum Engine: Sendable, Equatable {
        /// One node, SQLite in `dataDirectory` (the default).
        case sqlite
        /// One node of a cluster on this PostgreSQL database.
        case postgres(url: String)
    }

    /// `--engine` with `--postgres-url`.
    public var engine: Engine = .sqlite
    /// `--node-name`: this node's name in a cluster (default: a random one).
    public var nodeName: String?

    /// The SQLite message store's file, inside `dataDirectory`.
    public var messageStorePath: String {
        (dataDirectory as NSString).appendingPathComponent("herald.sqlite")
    }

    /// Resolves every setting: an explicit value in `overrides` wins, then
    /// `environment["HERALD_<NAME>"]`, then the default. Reads the configuration file if
    /// `overrides.configFile` or `HERALD_CONFIG` names one.
    ///
    /// Settings are checked in a fixed order and the first problem is thrown: log level,
    /// broker limits, listener, configuration file, then the rest.
    ///
    /// - Parameter environment: the variables to read, usually
    ///   `ProcessInfo.processInfo.environment`; tests pass their own.
    public init(overrides: Overrides = Overrides(), environment: [String: String]) throws(HeraldConfigurationError) {
        let lookup = SettingLookup(environment: environment)

        let levelText = lookup.text(overrides.logLevel, "LOG_LEVEL", default: "info")
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw .unknownLogLevel(levelText)
        }
        logLevel = level

        var broker = BrokerConfiguration()
        broker.connectTimeoutMilliseconds = try lookup.integer(overrides.connectTimeoutMilliseconds, "CONNECT_TIMEOUT_MS", default: broker.connectTimeoutMilliseconds)
        broker.maxIntervalMilliseconds = try lookup.integer(overrides.maxIntervalMilliseconds, "MAX_INTERVAL_MS", default: broker.maxIntervalMilliseconds)
        broker.maxMessageBytes = try lookup.integer(overrides.maxMessageBytes, "MAX_MESSAGE_BYTES", default: broker.maxMessageBytes)
        broker.maxBatchBytes = try lookup.integer(overrides.maxBatchBytes, "MAX_BATCH_BYTES", default: broker.maxBatchBytes)
        broker.maxPendingBytesPerSession = try lookup.integer(overrides.maxPendingBytes, "MAX_PENDING_BYTES", default: broker.maxPendingBytesPerSession)
        broker.maxLoggedChannels = try lookup.integer(overrides.maxLoggedChannels, "MAX_LOGGED_CHANNELS", default: broker.maxLoggedChannels)
        broker.maxSessions = try lookup.integer(overrides.maxSessions, "MAX_SESSIONS", default: broker.maxSessions)
        broker.maxSubscriptionsPerSession = try lookup.integer(overrides.maxSubscriptions, "MAX_SUBSCRIPTIONS", default: broker.maxSubscriptionsPerSession)
        broker.maxPublishesPerSecondPerSession = try lookup.integer(overrides.publishesPerSecond, "PUBLISHES_PER_SECOND", default: broker.maxPublishesPerSecondPerSession)
        // A batch must be able to carry the largest message, or that message could never be sent.
        guard broker.maxMessageBytes > 0, broker.maxBatchBytes >= broker.maxMessageBytes else {
            throw .invalidByteLimits
        }

        var server = ServerConfiguration()
        server.host = lookup.text(overrides.host, "HOST", default: "0.0.0.0")
        server.port = try lookup.integer(overrides.port, "PORT", default: 8080)
        server.path = lookup.text(overrides.path, "PATH", default: "/bayeux")
        guard server.path.hasPrefix("/") else { throw .invalidPath }
        server.allowedOrigins = lookup.text(overrides.allowedOrigins, "ALLOWED_ORIGINS", default: "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let secret = lookup.optionalText(overrides.jwtHS256Secret, "JWT_HS256_SECRET")
        // RFC 7518 §3.2: an HS256 key of at least 256 bits.
        if let secret, secret.utf8.count < 32 { throw .weakJWTSecret }
        let keyFiles = lookup.text(overrides.jwtPublicKeys, "JWT_PUBLIC_KEYS", default: "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let jwks = lookup.optionalText(overrides.jwtJWKS, "JWT_JWKS")
        if secret != nil || !keyFiles.isEmpty || jwks != nil {
            var pems: [(name: String, pem: String)] = []
            for file in keyFiles {
                guard let data = FileManager.default.contents(atPath: file) else { throw .jwtKey("cannot read the JWT public key file \(file)") }
                pems.append((file, String(decoding: data, as: UTF8.self)))
            }
            do {
                server.tokenVerifier = try TokenVerifier(hs256Secret: secret, publicKeyPEMs: pems, jwksPath: jwks)
            } catch {
                throw .jwtKey(error.description)
            }
            broker.requiresAuthentication = true
        }
        server.trustedProxies = lookup.text(overrides.trustedProxies, "TRUSTED_PROXIES", default: "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var badProxy: String?
        guard TrustedProxies(server.trustedProxies, invalid: { badProxy = $0 }) != nil else {
            throw .invalidTrustedProxy(badProxy ?? "")
        }
        server.maxConnections = try lookup.integer(overrides.maxConnections, "MAX_CONNECTIONS", default: server.maxConnections)
        server.maxConnectionsPerIP = try lookup.integer(overrides.maxConnectionsPerIP, "MAX_CONNECTIONS_PER_IP", default: server.maxConnectionsPerIP)
        server.handshakesPerSecondPerConnection = try lookup.integer(overrides.handshakesPerSecond, "HANDSHAKES_PER_SECOND", default: server.handshakesPerSecondPerConnection)
        server.handshakesPerSecondPerIP = try lookup.integer(overrides.handshakesPerSecondPerIP, "HANDSHAKES_PER_SECOND_PER_IP", default: server.handshakesPerSecondPerIP)
        server.rateLimitLoopback = try lookup.boolean(overrides.rateLimitLoopback, "RATE_LIMIT_LOOPBACK", default: server.rateLimitLoopback)
        server.maxOutboundBufferBytes = try lookup.integer(overrides.maxOutboundBytes, "MAX_OUTBOUND_BYTES", default: server.maxOutboundBufferBytes)
        server.writeStallTimeoutSeconds = try lookup.integer(overrides.writeStallTimeoutSeconds, "WRITE_STALL_TIMEOUT_S", default: server.writeStallTimeoutSeconds)
        server.requestTimeoutSeconds = try lookup.integer(overrides.requestTimeoutSeconds, "REQUEST_TIMEOUT_S", default: server.requestTimeoutSeconds)
        server.webSocketPingIntervalSeconds = try lookup.integer(overrides.pingIntervalSeconds, "PING_INTERVAL_S", default: server.webSocketPingIntervalSeconds)
        // Outbound must hold the replies to a read burst at the high-water mark, and the
        // timeouts are whole seconds of at least one.
        guard server.maxOutboundBufferBytes >= server.writeBufferHighWaterMarkBytes else { throw .invalidOutboundLimit(minimum: server.writeBufferHighWaterMarkBytes) }
        guard server.writeStallTimeoutSeconds >= 1, server.requestTimeoutSeconds >= 1, server.webSocketPingIntervalSeconds >= 1 else { throw .invalidTimeout }

        configFile = lookup.optionalText(overrides.configFile, "CONFIG")
        let file = try configFile.map { path throws(HeraldConfigurationError) in try ConfigurationFile(path: path) }
        if let file { broker.channels = file.channels }

        dataDirectory = lookup.text(overrides.dataDirectory, "DATA_DIR", default: "./herald-data")
        // The engine: a flag, then the environment, then the configuration file. An empty
        // value (compose's `${VAR}` with VAR unset) counts as not given.
        func given(_ text: String?) -> String? { text?.isEmpty == false ? text : nil }
        switch given(lookup.optionalText(overrides.engine, "ENGINE")) ?? given(file?.engine) ?? "sqlite" {
        case "sqlite": engine = .sqlite
        case "postgres", "postgresql":
            guard let url = given(lookup.optionalText(overrides.postgresURL, "POSTGRES_URL")) ?? given(file?.postgresURL) else { throw .postgresURLMissing }
            engine = .postgres(url: url)
        case let other: throw .unknownEngine(other)
        }
        nodeName = given(lookup.optionalText(overrides.nodeName, "NODE_NAME")) ?? given(file?.nodeName)
        eventLoopThreadCount = try lookup.integer(overrides.threads, "THREADS", default: 0)
        var admin = AdminConfiguration()
        admin.host = lookup.text(overrides.adminHost, "ADMIN_HOST", default: admin.host)
        admin.port = try lookup.integer(overrides.adminPort, "ADMIN_PORT", default: admin.port)
        // The token itself may come from the environment (HERALD_ADMIN_TOKEN) or a file; a
        // file named explicitly wins. It is never logged.
        if let file = lookup.optionalText(overrides.adminTokenFile, "ADMIN_TOKEN_FILE") {
            guard let data = FileManager.default.contents(atPath: file),
                let token = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
                !token.isEmpty, !token.contains(where: \.isNewline)
            else { throw .unreadableTokenFile(file) }
            admin.token = token
        } else if let token = environment["HERALD_ADMIN_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            admin.token = token
        }
        guard admin.token != nil || AdminConfiguration.isLoopback(admin.host) else {
            throw .adminNeedsToken(host: admin.host)
        }

        let dataTLS = try Self.certificates(
            lookup.optionalText(overrides.tlsCertificate, "TLS_CERT"), lookup.optionalText(overrides.tlsKey, "TLS_KEY"),
            flags: ("--tls-cert", "--tls-key"))
        let adminTLS = try Self.certificates(
            lookup.optionalText(overrides.adminTLSCertificate, "ADMIN_TLS_CERT"), lookup.optionalText(overrides.adminTLSKey, "ADMIN_TLS_KEY"),
            flags: ("--admin-tls-cert", "--admin-tls-key")) ?? dataTLS
        server.tls = dataTLS
        admin.tls = adminTLS?.serverConfiguration()
        self.dataTLS = dataTLS
        self.adminTLS = adminTLS
        self.admin = admin

        self.broker = broker
        self.server = server
    }

    /// Both files or neither; read and checked now, so that a bad file stops start-up.
    private static func certificates(_ certificate: String?, _ key: String?, flags: (String, String)) throws(HeraldConfigurationError) -> TLSCertificates? {
        switch (certificate, key) {
        case (nil, nil):
            return nil
        case (let certificate?, let key?):
            do {
                return try TLSCertificates(certificatePath: certificate, keyPath: key)
            } catch {
                throw .tlsFiles(error.description)
            }
        default:
            throw .tlsPairIncomplete(certificateFlag: flags.0, keyFlag: flags.1)
        }
    }
}
