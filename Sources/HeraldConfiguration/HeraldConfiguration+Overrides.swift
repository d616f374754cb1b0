extension HeraldConfiguration {
    /// Values given explicitly, as `herald serve`'s flags give them. Each one that is set wins
    /// over its environment twin `HERALD_<NAME>` (named after each property) and over the
    /// default; `nil` leaves the choice to the environment.
    ///
    /// Values are the flags' raw forms (`logLevel` as text, `allowedOrigins` comma-separated)
    /// so that they are checked exactly like the environment's.
    public struct Overrides: Sendable {
        /// `--host`, `HERALD_HOST`.
        public var host: String?
        /// `--port`, `HERALD_PORT`.
        public var port: Int?
        /// `--path`, `HERALD_PATH`.
        public var path: String?
        /// `--admin-host`, `HERALD_ADMIN_HOST`.
        public var adminHost: String?
        /// `--admin-port`, `HERALD_ADMIN_PORT`.
        public var adminPort: Int?
        /// `--admin-token-file`, `HERALD_ADMIN_TOKEN_FILE`: a file holding the admin token.
        public var adminTokenFile: String?
        /// `--data-dir`, `HERALD_DATA_DIR`.
        public var dataDirectory: String?
        /// `--config`, `HERALD_CONFIG`.
        public var configFile: String?
        /// `--log-level`, `HERALD_LOG_LEVEL`: a swift-log level name, any case.
        public var logLevel: String?
        /// `--allowed-origins`, `HERALD_ALLOWED_ORIGINS`: comma-separated, or `*`.
        public var allowedOrigins: String?
        /// `--connect-timeout-ms`, `HERALD_CONNECT_TIMEOUT_MS`.
        public var connectTimeoutMilliseconds: Int?
        /// `--max-interval-ms`, `HERALD_MAX_INTERVAL_MS`.
        public var maxIntervalMilliseconds: Int?
        /// `--max-message-bytes`, `HERALD_MAX_MESSAGE_BYTES`.
        public var maxMessageBytes: Int?
        /// `--max-batch-bytes`, `HERALD_MAX_BATCH_BYTES`.
        public var maxBatchBytes: Int?
        /// `--max-pending-bytes`, `HERALD_MAX_PENDING_BYTES`.
        public var maxPendingBytes: Int?
        /// `--max-logged-channels`, `HERALD_MAX_LOGGED_CHANNELS`.
        public var maxLoggedChannels: Int?
        /// `--threads`, `HERALD_THREADS`.
        public var threads: Int?
        /// `--tls-cert`, `HERALD_TLS_CERT`: a PEM file.
        public var tlsCertificate: String?
        /// `--tls-key`, `HERALD_TLS_KEY`: a PEM file.
        public var tlsKey: String?
        /// `--admin-tls-cert`, `HERALD_ADMIN_TLS_CERT`: a PEM file.
        public var adminTLSCertificate: String?
        /// `--admin-tls-key`, `HERALD_ADMIN_TLS_KEY`: a PEM file.
        public var adminTLSKey: String?
        /// `--max-sessions`, `HERALD_MAX_SESSIONS`.
        public var maxSessions: Int?
        /// `--max-subscriptions`, `HERALD_MAX_SUBSCRIPTIONS`.
        public var maxSubscriptions: Int?
        /// `--publishes-per-second`, `HERALD_PUBLISHES_PER_SECOND`.
        public var publishesPerSecond: Int?
        /// `--jwt-hs256-secret`, `HERALD_JWT_HS256_SECRET`: handshakes need a token signed with it.
        public var jwtHS256Secret: String?
        /// `--jwt-public-key`, `HERALD_JWT_PUBLIC_KEYS`: comma-separated PEM public key files.
        public var jwtPublicKeys: String?
        /// `--jwt-jwks`, `HERALD_JWT_JWKS`: a JSON Web Key Set file, re-read on SIGHUP.
        public var jwtJWKS: String?
        /// `--trusted-proxies`, `HERALD_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges.
        public var trustedProxies: String?
        /// `--max-connections`, `HERALD_MAX_CONNECTIONS`.
        public var maxConnections: Int?
        /// `--max-connections-per-ip`, `HERALD_MAX_CONNECTIONS_PER_IP`.
        public var maxConnectionsPerIP: Int?
        /// `--handshakes-per-second`, `HERALD_HANDSHAKES_PER_SECOND`.
        public var handshakesPerSecond: Int?
        /// `--handshakes-per-second-per-ip`, `HERALD_HANDSHAKES_PER_SECOND_PER_IP`.
        public var handshakesPerSecondPerIP: Int?
        /// `--rate-limit-loopback`, `HERALD_RATE_LIMIT_LOOPBACK`.
        public var rateLimitLoopback: Bool?
        /// `--max-outbound-bytes`, `HERALD_MAX_OUTBOUND_BYTES`.
        public var maxOutboundBytes: Int?
        /// `--write-stall-timeout-s`, `HERALD_WRITE_STALL_TIMEOUT_S`.
        public var writeStallTimeoutSeconds: Int?
        /// `--request-timeout-s`, `HERALD_REQUEST_TIMEOUT_S`.
        public var requestTimeoutSeconds: Int?
        /// `--ping-interval-s`, `HERALD_PING_INTERVAL_S`.
        public var pingIntervalSeconds: Int?
        /// `--engine`, `HERALD_ENGINE`: `sqlite` or `postgres`.
        public var engine: String?
        /// `--postgres-url`, `HERALD_POSTGRES_URL`.
        public var postgresURL: String?
        /// `--node-name`, `HERALD_NODE_NAME`.
        public var nodeName: String?

        public init(
            host: String? = nil,
            port: Int? = nil,
            path: String? = nil,
            adminHost: String? = nil,
            adminPort: Int? = nil,
            adminTokenFile: String? = nil,
            dataDirectory: String? = nil,
            configFile: String? = nil,
            logLevel: String? = nil,
            allowedOrigins: String? = nil,
            connectTimeoutMilliseconds: Int? = nil,
            maxIntervalMilliseconds: Int? = nil,
            maxMessageBytes: Int? = nil,
            maxBatchBytes: Int? = nil,
            maxPendingBytes: Int? = nil,
            maxLoggedChannels: Int? = nil,
            threads: Int? = nil,
            maxSessions: Int? = nil,
            maxSubscriptions: Int? = nil,
            publishesPerSecond: Int? = nil,
            jwtHS256Secret: String? = nil,
            jwtPublicKeys: String? = nil,
            jwtJWKS: String? = nil,
            trustedProxies: String? = nil,
            maxConnections: Int? = nil,
            maxConnectionsPerIP: Int? = nil,
            handshakesPerSecond: Int? = nil,
            handshakesPerSecondPerIP: Int? = nil,
            rateLimitLoopback: Bool? = nil,
            maxOutboundBytes: Int? = nil,
            writeStallTimeoutSeconds: Int? = nil,
            requestTimeoutSeconds: Int? = nil,
            pingIntervalSeconds: Int? = nil,
            tlsCertificate: String? = nil,
            tlsKey: String? = nil,
            adminTLSCertificate: String? = nil,
            adminTLSKey: String? = nil
        ) {
            self.host = host
            self.port = port
            self.path = path
            self.adminHost = adminHost
            self.adminPort = adminPort
            self.adminTokenFile = adminTokenFile
            self.dataDirectory = dataDirectory
            self.configFile = configFile
            self.logLevel = logLevel
            self.allowedOrigins = allowedOrigins
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
            self.maxIntervalMilliseconds = maxIntervalMilliseconds
            self.maxMessageBytes = maxMessageBytes
            self.maxBatchBytes = maxBatchBytes
            self.maxPendingBytes = maxPendingBytes
            self.maxLoggedChannels = maxLoggedChannels
            self.threads = threads
            self.maxSessions = maxSessions
            self.maxSubscriptions = maxSubscriptions
            self.publishesPerSecond = publishesPerSecond
            self.jwtHS256Secret = jwtHS256Secret
            self.jwtPublicKeys = jwtPublicKeys
            self.jwtJWKS = jwtJWKS
            self.trustedProxies = trustedProxies
            self.maxConnections = maxConnections
            self.maxConnectionsPerIP = maxConnectionsPerIP
            self.handshakesPerSecond = handshakesPerSecond
            self.handshakesPerSecondPerIP = handshakesPerSecondPerIP
            self.rateLimitLoopback = rateLimitLoopback
            self.maxOutboundBytes = maxOutboundBytes
            self.writeStallTimeoutSeconds = writeStallTimeoutSeconds
            self.requestTimeoutSeconds = requestTimeoutSeconds
            self.pingIntervalSeconds = pingIntervalSeconds
            self.tlsCertificate = tlsCertificate
            self.tlsKey = tlsKey
            self.adminTLSCertificate = adminTLSCertificate
            self.adminTLSKey = adminTLSKey
        }

        /// With the cluster settings too.
        public init(_ base: Overrides, engine: String?, postgresURL: String?, nodeName: String?) {
            self = base
            self.engine = engine
            self.postgresURL = postgresURL
            self.nodeName = nodeName
        }
    }
}
