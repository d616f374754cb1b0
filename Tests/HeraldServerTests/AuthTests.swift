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
        var roles: [String]?
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    static func token(secret: String = AuthTests.secret, subject: String = "alice", expires: TimeInterval = 300, notBefore: TimeInterval = -60, channels: [String]? = nil, roles: [String]? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(Claims(sub: .init(value: subject), exp: .init(value: Date().addingTimeInterval(expires)), nbf: .init(value: Date().addingTimeInterval(notBefore)), channels: channels, roles: roles))
    }

    static func subject(_ credential: HandshakeCredential) -> String? {
        if case .valid(let identity) = credential { return identity.subject }
        return nil
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
            let cookie = try #require(Self.browserCookie(response))
            func subscribe(_ pattern: String) async throws -> JSONValue? {
                let reply = try await TestHTTP.postJSON(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"\#(pattern)"}]"#, port: live.port, headers: [("Cookie", cookie)], on: LiveServer.group)
                return try JSONParser.parse(reply.text).arrayValue?.first
            }
            #expect(try await subscribe("/news/*")?["successful"] == .bool(true))
            #expect(try await subscribe("/stocks/*")?["error"] == .string("403:/stocks/*:Subscription not allowed"))
            let bad = try await TestHTTP.postJSON(Self.handshake(token: try await Self.token(channels: ["/a/*/b"])), port: live.port, on: LiveServer.group)
            #expect(try JSONParser.parse(bad.text).arrayValue?.first?["error"] == .string("401::Invalid token"))
        }
    }

    /// `BAYEUX_BROWSER=…` from a response's `Set-Cookie`, as a `Cookie` header value.
    static func browserCookie(_ response: TestHTTPResponse) -> String? {
        response.headers("Set-Cookie").first { $0.hasPrefix("BAYEUX_BROWSER=") }.map { String($0.prefix { $0 != ";" }) }
    }

    /// Hole 3 of issue 12: with tokens required, a clientId alone does not let another
    /// connection use the session. Connect, subscribe, publish, unsubscribe and disconnect that
    /// carry neither the handshake's cookie, nor a token for the same subject, nor come on the
    /// WebSocket that handshook, are answered as for an unknown client, and change nothing.
    @Test func aClientIdAloneDoesNotOpenAnotherClientsSession() async throws {
        try await Self.withAuthServer { live in
            func post(_ json: String, headers: [(String, String)] = []) async throws -> JSONValue {
                let response = try await TestHTTP.postJSON(json, port: live.port, headers: headers, on: LiveServer.group)
                return try #require(try JSONParser.parse(response.text).arrayValue?.first, "\(response.text)")
            }
            let handshake = try await TestHTTP.postJSON(Self.handshake(token: try await Self.token(subject: "alice")), port: live.port, on: LiveServer.group)
            let id = try #require(try JSONParser.parse(handshake.text).arrayValue?.first?["clientId"]?.stringValue)
            let setCookie = try #require(handshake.header("Set-Cookie"))
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("Path=/"), "\(setCookie)")
            let cookie = try #require(Self.browserCookie(handshake))
            let session = try #require(live.broker.session(id: id))

            // Mallory knows the clientId and nothing else.
            let attempts = [
                #"[{"channel":"/meta/connect","clientId":"\#(id)","connectionType":"long-polling","advice":{"timeout":0}}]"#,
                #"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/spam"}]"#,
                #"[{"channel":"/stocks/AAPL","clientId":"\#(id)","data":{"px":1}}]"#,
                #"[{"channel":"/meta/unsubscribe","clientId":"\#(id)","subscription":"/spam"}]"#,
                #"[{"channel":"/meta/disconnect","clientId":"\#(id)"}]"#,
            ]
            let strangers: [(String, [(String, String)])] = [
                ("nothing", []),
                ("another browser's cookie", [("Cookie", "BAYEUX_BROWSER=\(String(repeating: "ab", count: 20))")]),
                ("another subject's token", [("Authorization", "Bearer \(try await Self.token(subject: "mallory"))")]),
            ]
            for (name, headers) in strangers {
                for attempt in attempts {
                    let reply = try await post(attempt, headers: headers)
                    #expect(reply["successful"] == .bool(false), "\(name): \(attempt)")
                    #expect(reply["error"] == .string("402::Unknown client"), "\(name): \(reply)")
                }
            }
            #expect(live.broker.limits.count(.sessionBinding) == attempts.count * strangers.count)
            #expect(live.broker.session(id: id) === session, "the session is still there")
            #expect(session.subscriptions.isEmpty)
            #expect(live.broker.counters.published.load(ordering: .relaxed) == 0)

            // Alice, from any connection: with the cookie, with her token as a bearer, or in ext.
            let withCookie = try await post(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/a"}]"#, headers: [("Cookie", "theme=dark; \(cookie)")])
            #expect(withCookie["successful"] == .bool(true), "\(withCookie)")
            let withBearer = try await post(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/b"}]"#, headers: [("Authorization", "Bearer \(try await Self.token(subject: "alice"))")])
            #expect(withBearer["successful"] == .bool(true), "\(withBearer)")
            let token = try await Self.token(subject: "alice")
            let withExt = try await post(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/c","ext":{"auth":{"token":"\#(token)"}}}]"#)
            #expect(withExt["successful"] == .bool(true), "\(withExt)")
            #expect(session.subscriptions == ["/a", "/b", "/c"])

            // Over WebSocket: the socket that handshook is proof enough; another is not, unless
            // its upgrade carries the cookie (as Faye's client sends it after a long-polling
            // handshake). The upgrade sets a cookie when it brings none.
            let first = try await TestWebSocket.connect(port: live.port, on: LiveServer.group)
            #expect(first.upgradeHeaders.first(name: "set-cookie")?.hasPrefix("BAYEUX_BROWSER=") == true)
            try await first.send(Self.handshake(token: try await Self.token(subject: "erin")))
            let wsID = try #require(try JSONParser.parse(try await first.receive()).arrayValue?.first?["clientId"]?.stringValue)
            let other = try await TestWebSocket.connect(port: live.port, on: LiveServer.group)
            try await other.send(#"[{"channel":"/meta/subscribe","clientId":"\#(wsID)","subscription":"/x"}]"#)
            #expect(try JSONParser.parse(try await other.receive()).arrayValue?.first?["error"] == .string("402::Unknown client"))
            try await first.send(#"[{"channel":"/meta/subscribe","clientId":"\#(wsID)","subscription":"/x"}]"#)
            #expect(try JSONParser.parse(try await first.receive()).arrayValue?.first?["successful"] == .bool(true))
            let withUpgradeCookie = try await TestWebSocket.connect(port: live.port, headers: [("Cookie", cookie)], on: LiveServer.group)
            #expect(withUpgradeCookie.upgradeHeaders.first(name: "set-cookie") == nil, "the cookie it brought is kept")
            try await withUpgradeCookie.send(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/d"}]"#)
            #expect(try JSONParser.parse(try await withUpgradeCookie.receive()).arrayValue?.first?["successful"] == .bool(true))
            let withUpgradeBearer = try await TestWebSocket.connect(port: live.port, headers: [("Authorization", "Bearer \(try await Self.token(subject: "alice"))")], on: LiveServer.group)
            try await withUpgradeBearer.send(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/e"}]"#)
            #expect(try JSONParser.parse(try await withUpgradeBearer.receive()).arrayValue?.first?["successful"] == .bool(true))
            for socket in [first, other, withUpgradeCookie, withUpgradeBearer] { await socket.close() }
        }
    }

    /// Without tokens there is no identity to bind to: a clientId works from any connection,
    /// as in Faye and CometD. The handshake still sets the `BAYEUX_BROWSER` cookie, for load
    /// balancers to stick long-polling to a node on (docs/cluster.md), but nothing checks it.
    @Test func withoutTokensSessionsAreNotBound() async throws {
        try await withLiveServer { live in
            let handshake = try await TestHTTP.postJSON(Self.handshake(token: nil), port: live.port, on: LiveServer.group)
            #expect(handshake.header("Set-Cookie")?.hasPrefix("BAYEUX_BROWSER=") == true)
            let id = try #require(try JSONParser.parse(handshake.text).arrayValue?.first?["clientId"]?.stringValue)
            let reply = try await TestHTTP.postJSON(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/a"}]"#, port: live.port, on: LiveServer.group)
            #expect(try JSONParser.parse(reply.text).arrayValue?.first?["successful"] == .bool(true))
            #expect(live.broker.limits.count(.sessionBinding) == 0)
        }
    }

    /// Channel options `subscribe` and `publish` through the real verifier: a pattern open to
    /// `anyone` admits handshakes without a token, as anonymous sessions that get only such
    /// patterns; `claim:roles=trader` reads the token's own `roles` claim.
    @Test func anonymousPatternsAndClaimPermissions() async throws {
        let channels = #"{"/public/**": {"subscribe": "anyone", "publish": "server"}, "/desk/**": {"subscribe": "claim:roles=trader", "publish": "claim:roles=trader"}}"#
        try await withLiveServer(broker: {
            $0.requiresAuthentication = true
            $0.channels = try! ChannelPolicyTable.parse(JSONParser.parse(channels).objectValue!)
        }, server: { $0.tokenVerifier = TokenVerifier(hs256Secret: AuthTests.secret) }) { live in
            func session(token: String?) async throws -> (id: String, cookie: String) {
                let response = try await TestHTTP.postJSON(Self.handshake(token: token), port: live.port, on: LiveServer.group)
                let reply = try #require(try JSONParser.parse(response.text).arrayValue?.first)
                return (try #require(reply["clientId"]?.stringValue, "\(reply)"), try #require(Self.browserCookie(response)))
            }
            func send(_ json: String, _ client: (id: String, cookie: String)) async throws -> JSONValue? {
                let reply = try await TestHTTP.postJSON(json, port: live.port, headers: [("Cookie", client.cookie)], on: LiveServer.group)
                return try JSONParser.parse(reply.text).arrayValue?.first
            }
            func subscribe(_ pattern: String, _ client: (id: String, cookie: String)) async throws -> JSONValue? {
                try await send(#"[{"channel":"/meta/subscribe","clientId":"\#(client.id)","subscription":"\#(pattern)"}]"#, client)
            }
            let anonymous = try await session(token: nil)
            #expect(live.broker.session(id: anonymous.id)?.identity == nil)
            #expect(try await subscribe("/public/quotes", anonymous)?["successful"] == .bool(true))
            #expect(try await subscribe("/desk/*", anonymous)?["error"] == .string("403:/desk/*:Subscription not allowed"))
            #expect(try await subscribe("/other", anonymous)?["error"] == .string("403:/other:Subscription not allowed"))
            #expect(try await send(#"[{"channel":"/other","clientId":"\#(anonymous.id)","data":1}]"#, anonymous)?["error"] == .string("403:/other:Publish not allowed"))

            let trader = try await session(token: try await Self.token(subject: "tess", roles: ["trader"]))
            #expect(try await subscribe("/desk/*", trader)?["successful"] == .bool(true))
            #expect(try await send(#"[{"channel":"/desk/fx","clientId":"\#(trader.id)","data":1}]"#, trader)?["successful"] == .bool(true))
            let sales = try await session(token: try await Self.token(subject: "sam", roles: ["sales"]))
            #expect(try await subscribe("/desk/*", sales)?["error"] == .string("403:/desk/*:Subscription not allowed"))
            #expect(try await subscribe("/other", sales)?["successful"] == .bool(true))

            // An invalid token is still refused, even where anonymous sessions are admitted.
            let forged = try await TestHTTP.postJSON(Self.handshake(token: "not.a.token"), port: live.port, on: LiveServer.group)
            #expect(try JSONParser.parse(forged.text).arrayValue?.first?["error"] == .string("401::Invalid token"))
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

    /// Public keys from PEM files (made by openssl here): ES256 and RS256 tokens verify; a
    /// token signed by another key, or an HS256 token using the public key as its secret
    /// (algorithm confusion), does not.
    @Test func publicKeysVerifyES256AndRS256() async throws {
        let directory = try TLSTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func openssl(_ arguments: [String]) async throws {
            let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/openssl"), arguments)
            guard status == 0 else { throw BayeuxTestClient.Failure(description: output) }
        }
        for name in ["ec", "other"] {
            try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "\(directory)/\(name).key"])
            try await openssl(["pkey", "-in", "\(directory)/\(name).key", "-pubout", "-out", "\(directory)/\(name).pub"])
        }
        try await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "\(directory)/rsa.key"])
        try await openssl(["pkey", "-in", "\(directory)/rsa.key", "-pubout", "-out", "\(directory)/rsa.pub"])
        func read(_ file: String) throws -> String { try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8) }

        let configuration = try HeraldConfiguration(environment: ["HERALD_JWT_PUBLIC_KEYS": "\(directory)/ec.pub, \(directory)/rsa.pub"])
        #expect(configuration.broker.requiresAuthentication)
        let verifier = try #require(configuration.server.tokenVerifier)
        let claims = Claims(sub: .init(value: "erin"), exp: .init(value: Date().addingTimeInterval(300)))

        let ec = JWTKeyCollection()
        await ec.add(ecdsa: try ES256PrivateKey(pem: try read("ec.key")))
        let ecResult = await verifier.verify(try await ec.sign(claims))
        #expect(Self.subject(ecResult) == "erin", "\(ecResult)")
        let rsa = JWTKeyCollection()
        await rsa.add(rsa: try Insecure.RSA.PrivateKey(pem: try read("rsa.key")), digestAlgorithm: .sha256)
        #expect(Self.subject(await verifier.verify(try await rsa.sign(claims))) == "erin")

        let other = JWTKeyCollection()
        await other.add(ecdsa: try ES256PrivateKey(pem: try read("other.key")))
        guard case .invalid = await verifier.verify(try await other.sign(claims)) else {
            Issue.record("a token signed by another key was accepted")
            return
        }
        let confused = JWTKeyCollection()
        await confused.add(hmac: HMACKey(from: try read("ec.pub")), digestAlgorithm: .sha256)
        guard case .invalid = await verifier.verify(try await confused.sign(claims)) else {
            Issue.record("an HS256 token keyed with the public key was accepted")
            return
        }
        try "not a key".write(toFile: "\(directory)/bad.pub", atomically: true, encoding: .utf8)
        #expect(throws: HeraldConfigurationError.self) {
            try HeraldConfiguration(environment: ["HERALD_JWT_PUBLIC_KEYS": "\(directory)/bad.pub"])
        }
    }
}
