@testable import HeraldServer
import Testing

/// The origin rules (issue 12, hole 4): by default any page could drive a Herald on its
/// user's network, with credentials. Now: same-origin and loopback pages, and origins named.
@Suite struct CORSPolicyTests {
    @Test func theDefaultAllowsOnlySameOriginAndLoopback() {
        let policy = CORSPolicy(allowedOrigins: [])
        let host = "feed.example:8080"
        #expect(policy.access(origin: "https://feed.example:8080", host: host) == .credentialed)
        #expect(policy.access(origin: "http://FEED.example:8080", host: host) == .credentialed)
        for origin in ["http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "http://[::1]:5173"] {
            #expect(policy.access(origin: origin, host: host) == .anonymous(echo: origin), "\(origin)")
        }
        for origin in ["https://evil.example", "null", "http://localhost.evil.example", "http://localhost:3000.evil.example",
                       "http://127.0.0.1.nip.io", "file://", "http://localhost:", "https://feed.example:8081"] {
            #expect(policy.access(origin: origin, host: host) == .denied, "\(origin)")
            #expect(policy.headers(origin: origin, host: host).isEmpty)
        }
    }

    /// swift-websocket (HeraldClient's WebSocket) sends `Origin: ws://host`, which no browser
    /// can: served as a client without an Origin would be, never with credentials.
    @Test func webSocketSchemeOriginsAreNonBrowserClients() {
        let policy = CORSPolicy(allowedOrigins: [])
        for origin in ["ws://127.0.0.1", "wss://feed.example", "WS://Feed.example"] {
            #expect(policy.access(origin: origin, host: "feed.example:8080") == .anonymous(echo: origin), "\(origin)")
        }
        #expect(policy.access(origin: "wsx://feed.example", host: "feed.example:8080") == .denied)
    }

    @Test func namedOriginsGetCredentialsAndStarGetsNone() {
        let policy = CORSPolicy(allowedOrigins: ["https://App.example/", "*"])
        #expect(policy.access(origin: "https://app.example", host: "x") == .credentialed)
        #expect(policy.access(origin: "https://other.example", host: "x") == .anonymous(echo: "*"))
        #expect(policy.access(origin: "null", host: "x") == .anonymous(echo: "*"))
        let headers = policy.headers(origin: "https://other.example", host: "x")
        #expect(headers.first { $0.0 == "Access-Control-Allow-Origin" }?.1 == "*")
        #expect(!headers.contains { $0.0 == "Access-Control-Allow-Credentials" })
        let named = policy.headers(origin: "https://app.example", host: "x")
        #expect(named.first { $0.0 == "Access-Control-Allow-Credentials" }?.1 == "true")
        #expect(named.first { $0.0 == "Access-Control-Allow-Origin" }?.1 == "https://app.example")
    }

    @Test func withoutAHostOnlyTheListAndLoopbackCount() {
        let policy = CORSPolicy(allowedOrigins: ["https://app.example"])
        #expect(policy.access(origin: "http://feed.example", host: nil) == .denied)
        #expect(policy.access(origin: "http://localhost:1", host: nil) == .anonymous(echo: "http://localhost:1"))
    }
}
