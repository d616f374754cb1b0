import HeraldConfiguration
import HeraldCore
import HeraldProtocol
@testable import HeraldServer
import NIOCore
import Testing

/// `X-Forwarded-For` from trusted proxies only (issue 12): behind a load balancer every client
/// shares its address, so the per-address limits need the forwarded one, and a client must
/// not be able to choose its own.
@Suite struct TrustedProxiesTests {
    static func address(_ text: String) -> SocketAddress { try! SocketAddress(ipAddress: text, port: 0) }

    @Test func rangesAndTheRightmostUntrustedHop() throws {
        let proxies = try #require(TrustedProxies(["10.0.0.0/8", "192.168.1.5", "fd00::/8", "::1"]))
        #expect(proxies.contains(Self.address("10.200.3.4")))
        #expect(proxies.contains(Self.address("::ffff:10.1.1.1")), "IPv4-mapped IPv6 counts as IPv4")
        #expect(!proxies.contains(Self.address("11.0.0.1")))
        #expect(proxies.contains(Self.address("192.168.1.5")) && !proxies.contains(Self.address("192.168.1.6")))
        #expect(proxies.contains(Self.address("fdab::1")) && !proxies.contains(Self.address("fe80::1")))
        let lb = Self.address("10.0.0.2")
        // Client, then proxies: the rightmost untrusted hop is the client.
        #expect(proxies.client(of: lb, forwardedFor: ["203.0.113.7, 10.0.0.9"])?.ipAddress == "203.0.113.7")
        // A client that sends its own header gets it prepended to, not believed.
        #expect(proxies.client(of: lb, forwardedFor: ["1.2.3.4, 203.0.113.7"])?.ipAddress == "203.0.113.7")
        #expect(proxies.client(of: lb, forwardedFor: ["1.2.3.4", "203.0.113.8"])?.ipAddress == "203.0.113.8", "several header lines")
        #expect(proxies.client(of: lb, forwardedFor: ["[2001:db8::5]"])?.ipAddress == "2001:db8::5")
        // Garbage stops the walk at the last trusted hop.
        #expect(proxies.client(of: lb, forwardedFor: ["203.0.113.7, unknown"]) == lb)
        #expect(proxies.client(of: lb, forwardedFor: []) == lb)
        // From an untrusted peer the header is ignored.
        let stranger = Self.address("198.51.100.1")
        #expect(proxies.client(of: stranger, forwardedFor: ["203.0.113.7"]) == stranger)
        for bad in ["10.0.0.0/33", "not-an-ip", "10.0.0.0/x", "fd00::/129"] {
            #expect(TrustedProxies([bad]) == nil, "\(bad)")
        }
        #expect(throws: HeraldConfigurationError.invalidTrustedProxy("10.0.0.0/33")) {
            try HeraldConfiguration(environment: ["HERALD_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.0/33"])
        }
        #expect(try HeraldConfiguration(overrides: .init(trustedProxies: "10.0.0.0/8,::1"), environment: [:]).server.trustedProxies == ["10.0.0.0/8", "::1"])
    }

    /// Per-address limits count an IPv6 client by its /64: one host is given a whole /64.
    @Test func ipv6AddressesCountByTheirSlash64() {
        let a = HandshakeLimiter.addressKey(Self.address("2001:db8:1:2::1"))
        #expect(a == HandshakeLimiter.addressKey(Self.address("2001:db8:1:2:ffff:ffff:ffff:ffff")))
        #expect(a != HandshakeLimiter.addressKey(Self.address("2001:db8:1:3::1")))
        #expect(HandshakeLimiter.addressKey(Self.address("203.0.113.7")) == "203.0.113.7")
        #expect(HandshakeLimiter.addressKey(Self.address("::ffff:203.0.113.7")) == "203.0.113.7")
    }

    /// A trusted proxy on loopback (loopback limited here): its connections are not limited per
    /// address, the handshake rate is per forwarded client, and the session records the
    /// forwarded address, over long-polling and WebSocket.
    @Test func limitsAndSessionsSeeTheForwardedClient() async throws {
        try await withLiveServer(server: {
            $0.trustedProxies = ["127.0.0.1"]
            $0.rateLimitLoopback = true
            $0.maxConnectionsPerIP = 2
            $0.handshakesPerSecondPerIP = 1
        }) { live in
            var open: [RawTCP] = []
            for _ in 0..<4 { open.append(try await RawTCP.connect(port: live.port, on: LiveServer.group)) }
            #expect(await HostileClientTests.waitUntil(5) { live.server.connectionCount == 4 }, "a trusted proxy is not limited per address")
            for socket in open { await socket.close() }

            func handshake(from client: String) async throws -> JSONValue? {
                let response = try await TestHTTP.postJSON(HostileClientTests.handshakes(1), port: live.port, headers: [("X-Forwarded-For", client)], on: LiveServer.group)
                return try JSONParser.parse(response.text).arrayValue?.first
            }
            // One handshake a second, bursts of two, per forwarded client. The three go at once:
            // one after another, a loaded machine can take a second and earn a new one.
            async let a = handshake(from: "203.0.113.7")
            async let b = handshake(from: "203.0.113.7")
            async let c = handshake(from: "203.0.113.7")
            let three = try await [a, b, c]
            let accepted = three.filter { $0?["successful"] == .bool(true) }
            #expect(accepted.count == 2)
            #expect(three.compactMap { $0?["error"]?.stringValue } == ["429:handshake_rate_ip:Too many handshakes"])
            let first = accepted.first ?? nil
            #expect(try await handshake(from: "203.0.113.8")?["successful"] == .bool(true), "another client behind the proxy")

            // The session knows the forwarded address once it connects.
            let id = try #require(first?["clientId"]?.stringValue)
            let connect = #"[{"channel":"/meta/connect","clientId":"\#(id)","connectionType":"long-polling","advice":{"timeout":0}}]"#
            _ = try await TestHTTP.postJSON(connect, port: live.port, headers: [("X-Forwarded-For", "203.0.113.7")], on: LiveServer.group)
            #expect(live.broker.session(id: id)?.remoteAddress?.ipAddress == "203.0.113.7")

            let socket = try await TestWebSocket.connect(port: live.port, headers: [("X-Forwarded-For", "203.0.113.9")], on: LiveServer.group)
            try await socket.send(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]"#)
            let reply = try #require(try JSONParser.parse(try await socket.receive()).arrayValue?.first)
            let wsId = try #require(reply["clientId"]?.stringValue)
            try await socket.send(#"[{"channel":"/meta/connect","clientId":"\#(wsId)","connectionType":"websocket","advice":{"timeout":0}}]"#)
            _ = try await socket.receive()
            #expect(live.broker.session(id: wsId)?.remoteAddress?.ipAddress == "203.0.113.9")
            await socket.close()
        }
    }
}
