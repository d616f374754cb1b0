import Foundation
import HeraldConfiguration
import HeraldCore
import HeraldProtocol
import HeraldServer
import JWTKit
import Testing

/// Token authentication (issue 12): with an HS256 secret configured, every handshake needs a
/// valid JWT, in `ext.auth.token` or as a bearer token on the request or the upgrade.
@Suite struct AuthTests {
    static let secret = "a-secret-of-at-least-thirty-two-bytes!!"

    struct Claims: JWTPayload {
        var sub: SubjectClaim?
        var exp: ExpirationClaim?
        var nbf: NotBeforeClaim?
        var channels: [String]?
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    static func token(secret: String = AuthTests.secret, subject: String = "alice", expires: TimeInterval = 300, notBefore: TimeInterval = -60, channels: [String]? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(Claims(sub: .init(value: subject), exp: .init(value: Date().addingTimeInterval(expires)), nbf: .init(value: Date().addingTimeInterval(notBefore)), channels: channels))
    }

    static func base64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func handshake(token: String?) -> String {
        let ext = token.map { #","ext":{"auth":{"token":"\#($0)"}}"# } ?? ""
        return #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"]\#(ext)}]"#
    }

    static func withAuthServer(_ body: (LiveServer) async throws -> Void) async throws {
        try await withLiveServer(broker: { $0.requiresAuthentication = true }, server: { $0.tokenVerifier = TokenVerifier(hs256Secret: AuthTests.secret) }, body)
    }

    @Test func longPollingHandshakesNeedAValidToken() async throws {
        try await Self.withAuthServer { live in
            func reply(_ json: String, headers: [(String, String)] = []) async throws -> JSONValue {
                let response = try await TestHTTP.postJSON(json, port: live.port, headers: headers, on: LiveServer.group)
                return try #require(try JSONParser.parse(response.text).arrayValue?.first)
            }
            let valid = try await reply(Self.handshake(token: try await Self.token()))
            #expect(valid["successful"] == .bool(true), "\(valid)")
            let id = try #require(valid["clientId"]?.stringValue)
            #expect(live.broker.session(id: id)?.identity?.subject == "alice")

            let bearer = try await reply(Self.handshake(token: nil), headers: [("Authorization", "Bearer \(try await Self.token(subject: "bob"))")])
            #expect(bearer["successful"] == .bool(true), "a bearer header works too")
            #expect(live.broker.session(id: bearer["clientId"]?.stringValue ?? "")?.identity?.subject == "bob")

            let missing = try await reply(Self.handshake(token: nil))
            #expect(missing["error"] == .string("401::Authentication required"))
            #expect(missing["advice"]?["reconnect"] == .string("none"))
            #expect(missing["clientId"] == nil)

            let payload = Self.base64URL(#"{"sub":"mallory","exp":\#(Int(Date().timeIntervalSince1970) + 300)}"#)
            let refused: [(String, String)] = [
                ("forged", try await Self.token(secret: "another-secret-of-thirty-two-bytes-long")),
                ("alg none", Self.base64URL(#"{"alg":"none","typ":"JWT"}"#) + "." + payload + "."),
                ("alg none, signature kept", Self.base64URL(#"{"alg":"none","typ":"JWT"}"#) + "." + payload + "." + (try await Self.token()).split(separator: ".").last!),
                ("expired", try await Self.token(expires: -10)),
                ("not yet valid", try await Self.token(notBefore: 600)),
                ("garbage", "not.a.token"),
            ]
            for (name, token) in refused {
                let answer = try await reply(Self.handshake(token: token))
                #expect(answer["error"] == .string("401::Invalid token"), "\(name): \(answer)")
                #expect(answer["advice"]?["reconnect"] == .string("none"), "\(name)")
            }
            #expect(live.broker.sessionCount == 2)
            #expect(live.broker.limits.count(.authentication) == 1 + refused.count)
        }
    }

    /// Over WebSocket, in `ext` or on the upgrade; a batch behind one being verified waits for
    /// it, so replies keep their order.
    @Test func webSocketHandshakesNeedAValidTokenAndKeepTheirOrder() async throws {
        try await Self.withAuthServer { live in
            let socket = try await TestWebSocket.connect(port: live.port, on: LiveServer.group)
            try await socket.send(Self.handshake(token: "forged.token.here"))
            try await socket.send(Self.handshake(token: try await Self.token(subject: "carol")))
            let first = try #require(try JSONParser.parse(try await socket.receive()).arrayValue?.first)
            let second = try #require(try JSONParser.parse(try await socket.receive()).arrayValue?.first)
            #expect(first["error"] == .string("401::Invalid token"))
            #expect(second["successful"] == .bool(true))
            let id = try #require(second["clientId"]?.stringValue)
            try await socket.send(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/a","id":"s"}]"#)
            #expect(try JSONParser.parse(try await socket.receive()).arrayValue?.first?["successful"] == .bool(true))
            await socket.close()

            let upgraded = try await TestWebSocket.connect(port: live.port, headers: [("Authorization", "Bearer \(try await Self.token(subject: "dave"))")], on: LiveServer.group)
            try await upgraded.send(Self.handshake(token: nil))
            let reply = try #require(try JSONParser.parse(try await upgraded.receive()).arrayValue?.first)
            #expect(reply["successful"] == .bool(true))
            #expect(live.broker.session(id: reply["clientId"]?.stringValue ?? "")?.identity?.subject == "dave")
            await upgraded.close()
        }
    }

    /// The `channels` claim, through the real verifier: a wildcard wider than the claim is
    /// refused, and a claim that is not a list of patterns makes the token invalid.
    @Test func theChannelsClaimLimitsSubscriptions() async throws {
        try await Self.withAuthServer { live in
            let response = try await TestHTTP.postJSON(Self.handshake(token: try await Self.token(channels: ["/stocks/AAPL", "/news/**"])), port: live.port, on: LiveServer.group)
            let id = try #require(try JSONParser.parse(response.text).arrayValue?.first?["clientId"]?.stringValue)
            func subscribe(_ pattern: String) async throws -> JSONValue? {
                let reply = try await TestHTTP.postJSON(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"\#(pattern)"}]"#, port: live.port, on: LiveServer.group)
                return try JSONParser.parse(reply.text).arrayValue?.first
            }
            #expect(try await subscribe("/news/*")?["successful"] == .bool(true))
            #expect(try await subscribe("/stocks/*")?["error"] == .string("403:/stocks/*:Subscription not allowed"))
            let bad = try await TestHTTP.postJSON(Self.handshake(token: try await Self.token(channels: ["/a/*/b"])), port: live.port, on: LiveServer.group)
            #expect(try JSONParser.parse(bad.text).arrayValue?.first?["error"] == .string("401::Invalid token"))
        }
    }

    /// `--jwt-hs256-secret` (or its variable) turns authentication on; a short secret is refused.
    @Test func theSecretComesFromTheConfiguration() throws {
        let configuration = try HeraldConfiguration(environment: ["HERALD_JWT_HS256_SECRET": Self.secret])
        #expect(configuration.broker.requiresAuthentication)
        #expect(configuration.server.tokenVerifier != nil)
        #expect(try HeraldConfiguration(environment: [:]).broker.requiresAuthentication == false)
        #expect(throws: HeraldConfigurationError.weakJWTSecret) {
            try HeraldConfiguration(overrides: .init(jwtHS256Secret: "short"), environment: [:])
        }
    }
}
