import ArgumentParser
import Foundation
import HeraldAdmin
import HeraldConfiguration
import HeraldCore
import HeraldPostgres
import HeraldSQLite
import HeraldServer
import Logging
import Metrics
import Prometheus
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// `herald serve`: runs the broker. Every flag has an environment twin `HERALD_<NAME>`; a flag
/// given on the command line wins over the environment. `HeraldConfiguration` resolves and
/// checks them, and reads the configuration file, so that embedding services get the same.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker.")

    @Option(help: "Data-plane bind address (default 0.0.0.0; env HERALD_HOST).")
    var host: String?
    @Option(help: "Data-plane port; 0 picks a free one (default 8080; env HERALD_PORT).")
    var port: Int?
    @Option(help: "Mount path for WebSocket and long-polling (default /bayeux; env HERALD_PATH).")
    var path: String?
    @Option(name: .customLong("admin-host"), help: "Admin API bind address; without a token only loopback is allowed (default 127.0.0.1; env HERALD_ADMIN_HOST).")
    var adminHost: String?
    @Option(name: .customLong("admin-port"), help: "Admin API port; 0 picks a free one (default 8081; env HERALD_ADMIN_PORT).")
    var adminPort: Int?
    @Option(name: .customLong("admin-token-file"), help: "File holding the admin API's bearer token (default none; env HERALD_ADMIN_TOKEN_FILE, or the token itself in HERALD_ADMIN_TOKEN).")
    var adminTokenFile: String?
    @Option(name: .customLong("data-dir"), help: "Directory for persistent state (default ./herald-data; env HERALD_DATA_DIR).")
    var dataDir: String?
    @Option(help: "Configuration file, JSON or YAML (.yaml/.yml): channel options by pattern (default none; env HERALD_CONFIG).")
    var config: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info; env HERALD_LOG_LEVEL).")
    var logLevel: String?
    @Option(name: .customLong("allowed-origins"), help: "Comma-separated browser origins allowed for CORS (with credentials) and WebSocket; * adds every origin without credentials; the server's own and loopback origins are always allowed (default none; env HERALD_ALLOWED_ORIGINS).")
    var allowedOrigins: String?
    @Option(name: .customLong("connect-timeout-ms"), help: "How long a /meta/connect is held, ms (default 30000; env HERALD_CONNECT_TIMEOUT_MS).")
    var connectTimeoutMilliseconds: Int?
    @Option(name: .customLong("max-interval-ms"), help: "Session expiry after the last connect, ms (default 30000; env HERALD_MAX_INTERVAL_MS).")
    var maxIntervalMilliseconds: Int?
    @Option(name: .customLong("max-message-bytes"), help: "Largest message, bytes (default 131072; env HERALD_MAX_MESSAGE_BYTES).")
    var maxMessageBytes: Int?
    @Option(name: .customLong("max-batch-bytes"), help: "Largest WebSocket message or HTTP body, bytes (default 1048576; env HERALD_MAX_BATCH_BYTES).")
    var maxBatchBytes: Int?
    @Option(name: .customLong("max-pending-bytes"), help: "Queued bytes per session before it is a slow consumer (default 1048576; env HERALD_MAX_PENDING_BYTES).")
    var maxPendingBytes: Int?
    @Option(name: .customLong("max-logged-channels"), help: "Most channels with retained values or history; publishes that would start more get 503 (default 100000; env HERALD_MAX_LOGGED_CHANNELS).")
    var maxLoggedChannels: Int?
    @Option(name: .customLong("max-sessions"), help: "Most sessions; handshakes past it get 503 (default 200000; env HERALD_MAX_SESSIONS).")
    var maxSessions: Int?
    @Option(name: .customLong("max-subscriptions"), help: "Most subscriptions per session; more get 403 (default 1024; env HERALD_MAX_SUBSCRIPTIONS).")
    var maxSubscriptions: Int?
    @Option(name: .customLong("publishes-per-second"), help: "Publishes per second per session, bursts of twice that, 0 for no limit; more get 429 (default 0; env HERALD_PUBLISHES_PER_SECOND).")
    var publishesPerSecond: Int?
    @Option(name: .customLong("jwt-hs256-secret"), help: "Require a JWT signed with this HS256 secret (32 bytes or more) in every handshake's ext.auth.token or Authorization header; prefer the environment, which ps does not show (default none; env HERALD_JWT_HS256_SECRET).")
    var jwtHS256Secret: String?
    @Option(name: .customLong("jwt-public-key"), help: "Comma-separated PEM public key files: EC P-256 keys verify ES256 tokens, RSA keys RS256; every handshake then needs a token (default none; env HERALD_JWT_PUBLIC_KEYS).")
    var jwtPublicKeys: String?
    @Option(name: .customLong("jwt-jwks"), help: "A JSON Web Key Set file whose RSA (RS256) and EC P-256 (ES256) keys verify tokens; re-read on SIGHUP, for key rotation (default none; env HERALD_JWT_JWKS).")
    var jwtJWKS: String?
    @Option(name: .customLong("trusted-proxies"), help: "Comma-separated proxy addresses or CIDR ranges whose X-Forwarded-For is believed; exempt from the per-IP connection limit (default none; env HERALD_TRUSTED_PROXIES).")
    var trustedProxies: String?
    @Option(name: .customLong("max-connections"), help: "Most open connections; more are closed as accepted, 0 for no limit (default 100000; env HERALD_MAX_CONNECTIONS).")
    var maxConnections: Int?
    @Option(name: .customLong("max-connections-per-ip"), help: "Most open connections from one IP address, loopback exempt, 0 for no limit (default 1000; env HERALD_MAX_CONNECTIONS_PER_IP).")
    var maxConnectionsPerIP: Int?
    @Option(name: .customLong("handshakes-per-second"), help: "Handshakes per second per connection, bursts of twice that, 0 for no limit; more get 429 (default 10; env HERALD_HANDSHAKES_PER_SECOND).")
    var handshakesPerSecond: Int?
    @Option(name: .customLong("handshakes-per-second-per-ip"), help: "Handshakes per second per IP address, loopback exempt, bursts of twice that, 0 for no limit (default 50; env HERALD_HANDSHAKES_PER_SECOND_PER_IP).")
    var handshakesPerSecondPerIP: Int?
    @Flag(name: .customLong("rate-limit-loopback"), help: "Apply the per-IP limits to loopback addresses too (env HERALD_RATE_LIMIT_LOOPBACK=true).")
    var rateLimitLoopback = false
    @Option(name: .customLong("max-outbound-bytes"), help: "Unsent bytes a connection may have waiting before it is closed (default 4194304; env HERALD_MAX_OUTBOUND_BYTES).")
    var maxOutboundBytes: Int?
    @Option(name: .customLong("write-stall-timeout-s"), help: "A connection that reads nothing of what it is sent for this long is closed, s (default 30; env HERALD_WRITE_STALL_TIMEOUT_S).")
    var writeStallTimeoutSeconds: Int?
    @Option(name: .customLong("request-timeout-s"), help: "An HTTP connection must send a whole request within this of its accept or last response, s (default 30; env HERALD_REQUEST_TIMEOUT_S).")
    var requestTimeoutSeconds: Int?
    @Option(name: .customLong("ping-interval-s"), help: "WebSocket keepalive ping interval; silent for three is closed, s (default 30; env HERALD_PING_INTERVAL_S).")
    var pingIntervalSeconds: Int?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve https and wss on the data port; re-read on SIGHUP (default none; env HERALD_TLS_CERT).")
    var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert (default none; env HERALD_TLS_KEY).")
    var tlsKey: String?
    @Option(name: .customLong("admin-tls-cert"), help: "PEM certificate chain for the admin API; by default the data port's (default none; env HERALD_ADMIN_TLS_CERT).")
    var adminTLSCertificate: String?
    @Option(name: .customLong("admin-tls-key"), help: "PEM private key for --admin-tls-cert (default none; env HERALD_ADMIN_TLS_KEY).")
    var adminTLSKey: String?
    @Option(name: .customLong("threads"), help: "Event-loop threads; 0 means one per CPU this process may run on (default 0; env HERALD_THREADS).")
    var threads: Int?
    @Option(name: .customLong("engine"), help: "sqlite (one node, data in --data-dir) or postgres (one node of a cluster on --postgres-url) (default sqlite; env HERALD_ENGINE).")
    var engine: String?
    @Option(name: .customLong("postgres-url"), help: "The cluster's PostgreSQL, postgres://user:password@host:port/database, with --engine postgres; prefer the environment, which ps does not show (default none; env HERALD_POSTGRES_URL).")
    var postgresURL: String?
    @Option(name: .customLong("node-name"), help: "This node's name in a cluster, unique among the nodes (default a random one; env HERALD_NODE_NAME).")
    var nodeName: String?

    func run() async throws {
        ProcessTuning.tuneMalloc()
        let configuration: HeraldConfiguration
        do {
            configuration = try HeraldConfiguration(overrides: .init(overrides, engine: engine, postgresURL: postgresURL, nodeName: nodeName), environment: ProcessInfo.processInfo.environment)
        } catch {
            // A usage error, as before the settings moved into HeraldConfiguration: the same
            // message, usage text and exit status.
            throw ValidationError(error.description)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "herald")
        // Only the executable bootstraps metrics: what the libraries record through
        // swift-metrics lands in the registry that the admin API's /metrics serves.
        let metrics = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: metrics)
        // Commits and deliveries take well under a millisecond: buckets from 50 µs.
        let fine: [Duration] = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .seconds(1),
        ]
        factory.durationHistogramBuckets["herald_store_commit_duration_seconds"] = fine
        factory.durationHistogramBuckets["herald_delivery_latency_seconds"] = fine
        MetricsSystem.bootstrap(factory)

        // One node on SQLite, or one node of a cluster on PostgreSQL.
        var store: SQLiteMessageStore?
        var cluster: PostgresEngine?
        switch configuration.engine {
        case .sqlite:
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            // fsync every commit only when a channel asks for durable acknowledgements.
            let anyDurable = configuration.broker.channels.entries.contains { $0.options.durable }
            store = SQLiteMessageStore(path: configuration.messageStorePath, synchronousFull: anyDurable)
        case .postgres(let url):
            do {
                cluster = try PostgresEngine(url: url, node: configuration.nodeName, logger: logger)
            } catch {
                throw ValidationError("\(error)")
            }
        }

        // One event loop per CPU the process may actually run on (taskset, cpusets): more loops
        // than CPUs only adds cross-thread wake-ups and context switches to every fan-out.
        let threadCount = configuration.eventLoopThreadCount
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: threadCount > 0 ? threadCount : ProcessTuning.usableCPUs())

        let broker = Broker(configuration: configuration.broker, store: store, cluster: cluster, logger: logger)
        do {
            try await broker.restore()
        } catch where cluster != nil {
            logger.critical("cannot reach the cluster's PostgreSQL", metadata: ["error": "\(String(reflecting: error))"])
            throw ExitCode(1)
        }
        cluster?.reportStatistics { [broker] in broker.statisticsJSON }
        let startup = StartupLine(
            dataHost: configuration.server.host, path: configuration.server.path, adminHost: configuration.admin.host,
            dataTLS: configuration.dataTLS != nil, adminTLS: configuration.adminTLS != nil
        )
        let server = HeraldServer(broker: broker, configuration: configuration.server, eventLoopGroup: eventLoops, logger: logger) { address in
            startup.dataBound(address)
        }
        // The admin API's sockets on a thread of its own: an operator's request must not wait
        // behind a saturated fan-out's event-loop ticks (the kernel then shares the CPU between
        // them). Its handlers run on Swift's concurrency pool, as Hummingbird's do.
        let admin = try AdminServer(
            broker: broker,
            configuration: configuration.admin,
            dataPlane: AdminDataPlane(connections: { server.connectionsByTransport }, isReady: { server.isServing }, traffic: { server.traffic.totals }),
            eventLoopGroup: MultiThreadedEventLoopGroup(numberOfThreads: 1),
            metrics: metrics,
            logger: logger,
            onListening: { startup.adminBound($0) }
        )
        let group = ServiceGroup(
            configuration: .init(
                // Shut down in reverse order: the server stops accepting and closes its
                // connections first, then the broker ends the sessions and closes the store.
                services: (cluster.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                    .init(service: BrokerService(broker: broker)),
                    .init(service: server),
                    .init(service: admin),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        // SIGHUP re-reads the TLS files and the JWKS file; a bad file keeps what is in use.
        let reloading = Task {
            let certificates = configuration.tlsCertificates
            let jwks = configuration.server.tokenVerifier.flatMap { $0.jwksPath == nil ? nil : $0 }
            guard !certificates.isEmpty || jwks != nil else { return }
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                if let jwks, let path = jwks.jwksPath {
                    do {
                        let count = try jwks.reload()
                        logger.notice("JWKS reloaded", metadata: ["file": "\(path)", "keys": "\(count)"])
                    } catch {
                        logger.error("JWKS not reloaded; the keys in use stay", metadata: ["error": "\(error)"])
                    }
                }
                for tls in certificates {
                    do {
                        try tls.reload()
                        logger.notice("TLS certificate reloaded", metadata: ["file": "\(tls.certificatePath)"])
                    } catch {
                        logger.error("TLS certificate not reloaded; the one in use stays", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        defer { reloading.cancel() }
        let trimming = ProcessTuning.trimmer().map { Task(operation: $0) }
        defer { trimming?.cancel() }
        try await group.run()
    }

    /// The flags, as the values that win over the environment.
    var overrides: HeraldConfiguration.Overrides {
        HeraldConfiguration.Overrides(
            host: host,
            port: port,
            path: path,
            adminHost: adminHost,
            adminPort: adminPort,
            adminTokenFile: adminTokenFile,
            dataDirectory: dataDir,
            configFile: config,
            logLevel: logLevel,
            allowedOrigins: allowedOrigins,
            connectTimeoutMilliseconds: connectTimeoutMilliseconds,
            maxIntervalMilliseconds: maxIntervalMilliseconds,
            maxMessageBytes: maxMessageBytes,
            maxBatchBytes: maxBatchBytes,
            maxPendingBytes: maxPendingBytes,
            maxLoggedChannels: maxLoggedChannels,
            threads: threads,
            maxSessions: maxSessions,
            maxSubscriptions: maxSubscriptions,
            publishesPerSecond: publishesPerSecond,
            jwtHS256Secret: jwtHS256Secret,
            jwtPublicKeys: jwtPublicKeys,
            jwtJWKS: jwtJWKS,
            trustedProxies: trustedProxies,
            maxConnections: maxConnections,
            maxConnectionsPerIP: maxConnectionsPerIP,
            handshakesPerSecond: handshakesPerSecond,
            handshakesPerSecondPerIP: handshakesPerSecondPerIP,
            rateLimitLoopback: rateLimitLoopback ? true : nil,
            maxOutboundBytes: maxOutboundBytes,
            writeStallTimeoutSeconds: writeStallTimeoutSeconds,
            requestTimeoutSeconds: requestTimeoutSeconds,
            pingIntervalSeconds: pingIntervalSeconds,
            tlsCertificate: tlsCertificate,
            tlsKey: tlsKey,
            adminTLSCertificate: adminTLSCertificate,
            adminTLSKey: adminTLSKey
        )
    }
}
