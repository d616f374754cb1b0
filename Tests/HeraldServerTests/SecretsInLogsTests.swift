import Foundation
import HeraldProtocol
import Testing

/// No secret reaches the log (issue 12): `herald serve` at trace level, with an admin token
/// and TLS, serving requests with the right token, a wrong one, and a data-plane session.
@Suite struct SecretsInLogsTests {
    @Test func tokensAndKeysAreNeverLogged() async throws {
        let directory = try TLSTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try await TLSTests.makeCertificate(in: directory, name: "live", commonName: "live")
        let token = "s3cret-token-\(UUID().uuidString)"
        let wrong = "wrong-token-\(UUID().uuidString)"
        let process = Process()
        process.executableURL = CrashTests.heraldBinary
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--data-dir", directory, "--log-level", "trace",
                             "--tls-cert", files.certificate, "--tls-key", files.key]
        process.environment = ProcessInfo.processInfo.environment.merging(["HERALD_ADMIN_TOKEN": token]) { $1 }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let collected = Task { try await ChildProcess.offThePool { errors.fileHandleForReading.readDataToEndOfFile() } }
        let line = try await ChildProcess.firstLine(of: output)
        let match = try #require(line.firstMatch(of: /data=https:\/\/127\.0\.0\.1:(\d+)\/bayeux admin=https:\/\/127\.0\.0\.1:(\d+)/), "\(line)")
        let port = try #require(Int(match.1))
        let adminPort = try #require(Int(match.2))
        let tls = try TLSTests.client(trusting: files.certificate)

        for bearer in [token, wrong] {
            let admin = try await RawTCP.connect(port: adminPort, tls: tls, on: LiveServer.group)
            try await admin.write("GET /v1/stats HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(bearer)\r\nConnection: close\r\n\r\n")
            let response = String(decoding: try await admin.readAll(until: .seconds(5)), as: UTF8.self)
            #expect(response.hasPrefix(bearer == token ? "HTTP/1.1 200" : "HTTP/1.1 401"), "\(response)")
            await admin.close()
        }
        let subscriber = try await TLSTests.subscriber(port: port, tls: tls)
        await subscriber.close()

        process.terminate()
        process.waitUntilExit()
        let log = String(decoding: try await collected.value, as: UTF8.self)
        #expect(log.contains("trace") || log.contains("debug") || log.contains("info"), "the log was captured")
        #expect(!log.contains(token), "the admin token is in the log")
        #expect(!log.contains(wrong), "a presented token is in the log")
        let key = try String(contentsOfFile: files.key, encoding: .utf8)
        let keyBody = key.split(separator: "\n").dropFirst().first.map(String.init) ?? key
        #expect(!log.contains(keyBody), "the TLS key is in the log")
    }
}
