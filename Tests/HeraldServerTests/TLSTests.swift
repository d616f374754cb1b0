import Foundation
import HeraldConfiguration
import HeraldServer
import NIOCore
import NIOSSL
import Testing

/// TLS on the data listener and the admin API (issue 12), with certificates `openssl` makes
/// at test time.
@Suite struct TLSTests {
    /// A self-signed certificate for `localhost` and 127.0.0.1, and its key, in `directory`.
    static func makeCertificate(in directory: String, name: String, commonName: String) async throws -> (certificate: String, key: String) {
        let certificate = directory + "/\(name).crt"
        let key = directory + "/\(name).key"
        let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/openssl"), [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=\(commonName)",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        guard status == 0 else { throw BayeuxTestClient.Failure(description: "openssl failed: \(output)") }
        return (certificate, key)
    }

    static func temporaryDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "herald-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// A client context that trusts only `certificate`.
    static func client(trusting certificate: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(certificate)
        return try NIOSSLContext(configuration: configuration)
    }

    /// Reads until the bytes received contain `text`.
    static func read(_ socket: RawTCP, until text: String, timeout: Duration = .seconds(5)) async throws -> String {
        var received: [UInt8] = []
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !String(decoding: received, as: UTF8.self).contains(text) {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, let chunk = try await socket.read(timeout: remaining) else {
                throw BayeuxTestClient.Failure(description: "no \(text) in \(String(decoding: received, as: UTF8.self))")
            }
            received += chunk
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// A WebSocket Bayeux client over TLS, handshaken and subscribed to `/a`.
    static func subscriber(port: Int, tls: NIOSSLContext) async throws -> RawTCP {
        let socket = try await RawTCP.connect(port: port, tls: tls, on: LiveServer.group)
        try await socket.write(HostileClientTests.upgrade)
        try await socket.write(ServerFrames.maskedTextFrame(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]"#))
        let handshake = try await read(socket, until: #""successful":true"#)
        let clientId = try #require(handshake.firstMatch(of: /"clientId":"([0-9a-f]+)"/)?.1)
        try await socket.write(ServerFrames.maskedTextFrame(#"[{"channel":"/meta/subscribe","clientId":"\#(clientId)","subscription":"/a","id":"s"},{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"websocket","id":"c"}]"#))
        _ = try await read(socket, until: #""subscription":"/a""#)
        return socket
    }

    @Test func webSocketAndLongPollingOverTLSAndAReloadThatKeepsOpenConnections() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await Self.makeCertificate(in: directory, name: "live", commonName: "first")
        let certificates = try TLSCertificates(certificatePath: first.certificate, keyPath: first.key)
        // Kept: the files are overwritten by the reload below.
        let firstTrust = try Self.client(trusting: first.certificate)
        try await withLiveServer(server: { $0.tls = certificates }) { live in
            let before = try await Self.subscriber(port: live.port, tls: firstTrust)

            // A new certificate in the same files, read again as SIGHUP does.
            let second = try await Self.makeCertificate(in: directory, name: "next", commonName: "second")
            for (from, to) in [(second.certificate, first.certificate), (second.key, first.key)] {
                try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: to), options: .atomic)
            }
            try certificates.reload()
            let secondTrust = try Self.client(trusting: first.certificate)   // now the second certificate

            // New connections get the new certificate: a client trusting only the old one
            // (its context read the file before the reload) fails its handshake.
            let stale = try await RawTCP.connect(port: live.port, tls: firstTrust, on: LiveServer.group)
            try? await stale.write("POST /bayeux HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n[]")
            let staleResponse = (try? await stale.readAll(until: .seconds(3))) ?? []
            #expect(!String(decoding: staleResponse, as: UTF8.self).contains("HTTP/1.1"))
            #expect(stale.isClosed)
            let publisher = try await RawTCP.connect(port: live.port, tls: secondTrust, on: LiveServer.group)
            let body = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#
            try await publisher.write("POST /bayeux HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let handshake = try await Self.read(publisher, until: #""successful":true"#)
            let clientId = try #require(handshake.firstMatch(of: /"clientId":"([0-9a-f]+)"/)?.1)
            let publish = #"[{"channel":"/a","clientId":"\#(clientId)","data":"over tls","id":"p"}]"#
            try await publisher.write("POST /bayeux HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(publish.utf8.count)\r\n\r\n\(publish)")
            _ = try await Self.read(publisher, until: #""id":"p""#)

            // The connection opened before the reload is still served.
            let delivered = try await Self.read(before, until: #""data":"over tls""#)
            #expect(delivered.contains(#""channel":"/a""#))
            await publisher.close()
            await before.close()
            await stale.close()
        }
    }

    /// A plaintext client on the TLS port gets no HTTP answer and is closed; the server goes on.
    @Test func plaintextOnTheTLSPortIsClosed() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try await Self.makeCertificate(in: directory, name: "live", commonName: "live")
        let certificates = try TLSCertificates(certificatePath: files.certificate, keyPath: files.key)
        try await withLiveServer(server: { $0.tls = certificates }) { live in
            let plain = try await RawTCP.connect(port: live.port, on: LiveServer.group)
            try await plain.write("GET /bayeux HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try await plain.readAll(until: .seconds(3))
            #expect(!String(decoding: response, as: UTF8.self).contains("HTTP/1.1"))
            #expect(plain.sawEOF)
            await plain.close()
            let good = try await Self.subscriber(port: live.port, tls: try Self.client(trusting: files.certificate))
            await good.close()
        }
    }

    /// Files that cannot serve are refused when read, with the file named.
    @Test func badFilesAreRefusedWithTheFileNamed() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let one = try await Self.makeCertificate(in: directory, name: "one", commonName: "one")
        let two = try await Self.makeCertificate(in: directory, name: "two", commonName: "two")
        #expect(throws: TLSCertificates.LoadError.self) { try TLSCertificates(certificatePath: one.certificate, keyPath: two.key) }
        do {
            _ = try TLSCertificates(certificatePath: one.certificate, keyPath: two.key)
        } catch {
            #expect(error.description.contains("does not match"), "\(error)")
        }
        do {
            _ = try TLSCertificates(certificatePath: directory + "/missing.crt", keyPath: one.key)
        } catch {
            #expect(error.description.contains("missing.crt"), "\(error)")
        }
        #expect(throws: HeraldConfigurationError.tlsPairIncomplete(certificateFlag: "--tls-cert", keyFlag: "--tls-key")) {
            try HeraldConfiguration(overrides: .init(tlsCertificate: one.certificate), environment: [:])
        }
        let configuration = try HeraldConfiguration(overrides: .init(tlsCertificate: one.certificate, tlsKey: one.key), environment: [:])
        #expect(configuration.server.tls === configuration.dataTLS)
        #expect(configuration.adminTLS === configuration.dataTLS, "the admin API defaults to the data port's certificate")
        #expect(configuration.admin.tls != nil)
        #expect(configuration.tlsCertificates.count == 1)
    }

    /// `herald serve --tls-cert --tls-key`: both listeners on https (the start-up line says
    /// so), `herald health` over https with the same settings, and SIGHUP reloads the files.
    @Test func serveWithTLSAndReloadOnSIGHUP() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try await Self.makeCertificate(in: directory, name: "live", commonName: "first")
        let process = Process()
        process.executableURL = CrashTests.heraldBinary
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--data-dir", directory, "--log-level", "error",
                             "--tls-cert", files.certificate, "--tls-key", files.key]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() }; process.waitUntilExit() }
        let line = try await ChildProcess.firstLine(of: output)
        let match = try #require(line.firstMatch(of: /data=https:\/\/127\.0\.0\.1:(\d+)\/bayeux admin=https:\/\/127\.0\.0\.1:(\d+)/), "\(line)")
        let port = try #require(Int(match.1))
        let adminPort = String(match.2)

        let firstTrust = try Self.client(trusting: files.certificate)
        let subscriber = try await Self.subscriber(port: port, tls: firstTrust)
        let (health, healthOutput) = try await ChildProcess.run(
            CrashTests.heraldBinary, ["health", "--admin-port", adminPort],
            environment: ["HERALD_TLS_CERT": files.certificate, "HERALD_TLS_KEY": files.key])
        #expect(health == 0, "\(healthOutput)")
        let (plainHealth, _) = try await ChildProcess.run(CrashTests.heraldBinary, ["health", "--admin-port", adminPort])
        #expect(plainHealth == 1, "plain http to the https admin port gets no answer")

        let second = try await Self.makeCertificate(in: directory, name: "next", commonName: "second")
        try Data(contentsOf: URL(fileURLWithPath: second.certificate)).write(to: URL(fileURLWithPath: files.certificate), options: .atomic)
        try Data(contentsOf: URL(fileURLWithPath: second.key)).write(to: URL(fileURLWithPath: files.key), options: .atomic)
        let secondTrust = try Self.client(trusting: files.certificate)
        kill(process.processIdentifier, SIGHUP)
        var reloaded = false
        for _ in 0..<30 where !reloaded {
            try await Task.sleep(for: .milliseconds(100))
            if let socket = try? await Self.subscriber(port: port, tls: secondTrust) {
                reloaded = true
                await socket.close()
            }
        }
        #expect(reloaded, "a client trusting only the new certificate connects after SIGHUP")
        #expect(process.isRunning)
        // The connection from before the reload is still open and served.
        try await subscriber.write(ServerFrames.maskedTextFrame("[]"))
        #expect(!subscriber.isClosed)
        await subscriber.close()
    }
}
