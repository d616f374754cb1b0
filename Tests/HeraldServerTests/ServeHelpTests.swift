import Foundation
import HeraldAdmin
import HeraldCore
import HeraldServer
import Testing

/// `herald serve --help` names each flag's default and environment twin; the defaults it
/// states are the ones the code uses.
@Suite struct ServeHelpTests {
    @Test func helpStatesTheDefaultsInForce() async throws {
        let (status, output) = try await ChildProcess.run(CrashTests.heraldBinary, ["serve", "--help"])
        #expect(status == 0)
        // ArgumentParser wraps long lines: compare with the whitespace folded.
        let help = output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let broker = BrokerConfiguration()
        let server = ServerConfiguration()
        let admin = AdminConfiguration()
        let expected: [(flag: String, value: String, env: String)] = [
            ("--host", server.host, "HERALD_HOST"),
            ("--port", String(server.port), "HERALD_PORT"),
            ("--path", server.path, "HERALD_PATH"),
            ("--admin-host", admin.host, "HERALD_ADMIN_HOST"),
            ("--admin-port", String(admin.port), "HERALD_ADMIN_PORT"),
            ("--connect-timeout-ms", String(broker.connectTimeoutMilliseconds), "HERALD_CONNECT_TIMEOUT_MS"),
            ("--max-interval-ms", String(broker.maxIntervalMilliseconds), "HERALD_MAX_INTERVAL_MS"),
            ("--max-message-bytes", String(broker.maxMessageBytes), "HERALD_MAX_MESSAGE_BYTES"),
            ("--max-batch-bytes", String(broker.maxBatchBytes), "HERALD_MAX_BATCH_BYTES"),
            ("--max-pending-bytes", String(broker.maxPendingBytesPerSession), "HERALD_MAX_PENDING_BYTES"),
            ("--max-logged-channels", String(broker.maxLoggedChannels), "HERALD_MAX_LOGGED_CHANNELS"),
            ("--allowed-origins", server.allowedOrigins.isEmpty ? "none" : server.allowedOrigins.joined(separator: ","), "HERALD_ALLOWED_ORIGINS"),
            ("--data-dir", "./herald-data", "HERALD_DATA_DIR"),
            ("--log-level", "info", "HERALD_LOG_LEVEL"),
            ("--threads", "0", "HERALD_THREADS"),
            ("--max-sessions", String(broker.maxSessions), "HERALD_MAX_SESSIONS"),
            ("--max-subscriptions", String(broker.maxSubscriptionsPerSession), "HERALD_MAX_SUBSCRIPTIONS"),
            ("--publishes-per-second", String(broker.maxPublishesPerSecondPerSession), "HERALD_PUBLISHES_PER_SECOND"),
            ("--trusted-proxies", "none", "HERALD_TRUSTED_PROXIES"),
            ("--jwt-hs256-secret", "none", "HERALD_JWT_HS256_SECRET"),
            ("--jwt-public-key", "none", "HERALD_JWT_PUBLIC_KEYS"),
            ("--jwt-jwks", "none", "HERALD_JWT_JWKS"),
            ("--max-connections", String(server.maxConnections), "HERALD_MAX_CONNECTIONS"),
            ("--max-connections-per-ip", String(server.maxConnectionsPerIP), "HERALD_MAX_CONNECTIONS_PER_IP"),
            ("--handshakes-per-second", String(server.handshakesPerSecondPerConnection), "HERALD_HANDSHAKES_PER_SECOND"),
            ("--handshakes-per-second-per-ip", String(server.handshakesPerSecondPerIP), "HERALD_HANDSHAKES_PER_SECOND_PER_IP"),
            ("--max-outbound-bytes", String(server.maxOutboundBufferBytes), "HERALD_MAX_OUTBOUND_BYTES"),
            ("--write-stall-timeout-s", String(server.writeStallTimeoutSeconds), "HERALD_WRITE_STALL_TIMEOUT_S"),
            ("--request-timeout-s", String(server.requestTimeoutSeconds), "HERALD_REQUEST_TIMEOUT_S"),
            ("--ping-interval-s", String(server.webSocketPingIntervalSeconds), "HERALD_PING_INTERVAL_S"),
        ]
        for (flag, value, env) in expected {
            // From the flag to the next flag: its own help text.
            guard let start = help.range(of: flag + " <") else {
                Issue.record("\(flag) is missing from the help")
                continue
            }
            let rest = help[start.upperBound...]
            let text = rest[..<(rest.range(of: " --")?.lowerBound ?? rest.endIndex)]
            #expect(text.contains("default \(value);"), "\(flag): \(text)")
            #expect(text.contains("env \(env)"), "\(flag): \(text)")
        }
    }

    /// `herald health` exits 0 while a broker answers on the admin port, and 1 once it is gone.
    @Test func healthAnswersForARunningBrokerOnly() async throws {
        let directory = NSTemporaryDirectory() + "herald-health-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await CrashTests.ServerProcess.start(dataDirectory: directory)
        let process = server.process
        defer { if process.isRunning { process.terminate() } }
        let port = String(server.adminPort)
        let (up, upOutput) = try await ChildProcess.run(CrashTests.heraldBinary, ["health", "--admin-port", port])
        #expect(up == 0, "\(upOutput)")
        process.terminate()
        try await ChildProcess.offThePool { process.waitUntilExit() }
        let (down, _) = try await ChildProcess.run(CrashTests.heraldBinary, ["health", "--admin-port", port])
        #expect(down == 1)
    }
}
