import Foundation
import HeraldConfiguration
import HeraldCore
import HeraldProtocol
import HeraldServer
import JWTKit
import Testing

/// Token keys from a JSON Web Key Set file (`--jwt-jwks`, issue 12): RS256 and ES256 keys are
/// taken, others left out; SIGHUP re-reads the file, so keys rotate without a restart.
@Suite struct JWKSTests {
    static func ecJWK(_ key: ES256PrivateKey, kid: String) throws -> String {
        guard let parameters = key.publicKey.parameters else { throw BayeuxTestClient.Failure(description: "no EC parameters") }
        return #"{"kty":"EC","crv":"P-256","kid":"\#(kid)","x":"\#(parameters.x)","y":"\#(parameters.y)"}"#
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func sign(_ key: ES256PrivateKey, subject: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: "whatever")
        return try await keys.sign(AuthTests.Claims(sub: .init(value: subject), exp: .init(value: Date().addingTimeInterval(300))))
    }

    static func subject(_ credential: HandshakeCredential) -> String? { AuthTests.subject(credential) }

    @Test func keysComeFromTheSetAndRotateOnReload() async throws {
        let directory = try TLSTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/openssl"), ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "\(directory)/rsa.key"])
        try #require(status == 0, "\(output)")
        let rsa = try Insecure.RSA.PrivateKey(pem: try String(contentsOfFile: "\(directory)/rsa.key", encoding: .utf8))
        let (modulus, exponent) = try rsa.publicKey.getKeyPrimitives()
        let rsaJWK = #"{"kty":"RSA","alg":"RS256","kid":"r1","n":"\#(Self.base64URL(modulus))","e":"\#(Self.base64URL(exponent))"}"#
        let first = ES256PrivateKey(), second = ES256PrivateKey()
        // An Ed25519 key and an encryption key are left out, not errors.
        let others = #"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},"# + (try Self.ecJWK(ES256PrivateKey(), kid: "enc")).replacingOccurrences(of: #""kid""#, with: #""use":"enc","kid""#)
        let file = "\(directory)/jwks.json"
        try #"{"keys":[\#(others),\#(try Self.ecJWK(first, kid: "e1")),\#(rsaJWK)]}"#.write(toFile: file, atomically: true, encoding: .utf8)

        let configuration = try HeraldConfiguration(environment: ["HERALD_JWT_JWKS": file])
        #expect(configuration.broker.requiresAuthentication)
        let verifier = try #require(configuration.server.tokenVerifier)
        #expect(Self.subject(await verifier.verify(try await Self.sign(first, subject: "ec"))) == "ec")
        let rsaKeys = JWTKeyCollection()
        await rsaKeys.add(rsa: rsa, digestAlgorithm: .sha256)
        let rsaToken = try await rsaKeys.sign(AuthTests.Claims(sub: .init(value: "rsa"), exp: .init(value: Date().addingTimeInterval(300))))
        #expect(Self.subject(await verifier.verify(rsaToken)) == "rsa")
        guard case .invalid = await verifier.verify(try await Self.sign(second, subject: "not yet")) else {
            Issue.record("a key not in the set verified")
            return
        }

        // Rotation: the new set replaces the old one.
        try #"{"keys":[\#(try Self.ecJWK(second, kid: "e2"))]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try verifier.reload() == 1)
        #expect(Self.subject(await verifier.verify(try await Self.sign(second, subject: "rotated"))) == "rotated")
        guard case .invalid = await verifier.verify(try await Self.sign(first, subject: "retired")) else {
            Issue.record("a key removed from the set still verified")
            return
        }
        // A broken file keeps the keys in use.
        try "{\"keys\": [".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: TokenVerifier.KeyError.self) { try verifier.reload() }
        #expect(Self.subject(await verifier.verify(try await Self.sign(second, subject: "kept"))) == "kept")

        // A set with no usable key, or no file, stops start-up with the file named.
        try #"{"keys":[\#(others)]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        for path in [file, "\(directory)/missing.json"] {
            do {
                _ = try HeraldConfiguration(environment: ["HERALD_JWT_JWKS": path])
                Issue.record("\(path) was accepted")
            } catch {
                #expect("\(error)".contains(path), "\(error)")
            }
        }
    }

    /// `herald serve --jwt-jwks`: SIGHUP re-reads the set; the next handshake uses it.
    @Test func serveReloadsTheSetOnSIGHUP() async throws {
        let directory = try TLSTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = ES256PrivateKey(), second = ES256PrivateKey()
        let file = "\(directory)/jwks.json"
        try #"{"keys":[\#(try Self.ecJWK(first, kid: "a"))]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = CrashTests.heraldBinary
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--data-dir", directory, "--log-level", "error", "--jwt-jwks", file]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() }; process.waitUntilExit() }
        let line = try await ChildProcess.firstLine(of: output)
        let match = try #require(line.firstMatch(of: /data=http:\/\/127\.0\.0\.1:(\d+)\/bayeux/), "\(line)")
        let port = try #require(Int(match.1))
        func handshake(_ key: ES256PrivateKey) async throws -> JSONValue? {
            let response = try await TestHTTP.postJSON(AuthTests.handshake(token: try await Self.sign(key, subject: "s")), port: port, on: LiveServer.group)
            return try JSONParser.parse(response.text).arrayValue?.first
        }
        #expect(try await handshake(first)?["successful"] == .bool(true))
        #expect(try await handshake(second)?["error"] == .string("401::Invalid token"))

        try #"{"keys":[\#(try Self.ecJWK(second, kid: "b"))]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        var rotated = false
        for _ in 0..<30 where !rotated {
            try await Task.sleep(for: .milliseconds(100))
            rotated = try await handshake(second)?["successful"] == .bool(true)
        }
        #expect(rotated, "the new key verifies after SIGHUP")
        #expect(try await handshake(first)?["error"] == .string("401::Invalid token"))
        #expect(process.isRunning)
    }
}
