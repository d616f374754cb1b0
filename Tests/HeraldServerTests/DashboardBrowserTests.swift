import Foundation
import HeraldCore
import HeraldProtocol
import NIOWebSocket
import Testing

/// The admin dashboard (`GET /`) in a real browser: Debian's headless `chromium`, driven over
/// the DevTools protocol, against a live broker with traffic. It checks what the page shows
/// against `/v1/stats` and the channel and client listings, the token prompt, and the kick
/// button, and keeps a screenshot in `.build/test-artifacts/` (or `$HERALD_TEST_ARTIFACTS`).
/// Runs when `HERALD_INTEROP=1`; `.ci/run` installs chromium and sets it.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "1", "needs chromium; .ci/run sets HERALD_INTEROP=1"), .serialized)
struct DashboardBrowserTests {
    static var artifacts: URL {
        if let path = ProcessInfo.processInfo.environment["HERALD_TEST_ARTIFACTS"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/test-artifacts")
    }

    /// Text of every `[data-stat]` element, by name.
    static let shownStats = "Object.fromEntries([...document.querySelectorAll('[data-stat]')].map(e => [e.dataset.stat, e.textContent]))"

    @Test func theDashboardShowsLiveStatsChannelsAndClientsAndKicks() async throws {
        try await AdminLiveTests().withAdmin { admin in
            let port = admin.live.port
            // Two subscribers of AAPL, one of MSFT (and one raw socket to kick).
            var subscribers: [BayeuxTestClient] = []
            for channel in ["/stocks/AAPL", "/stocks/AAPL", "/stocks/MSFT"] {
                let client = BayeuxTestClient(port: port, transport: .websocket)
                try await client.start()
                _ = try await client.subscribe(channel)
                subscribers.append(client)
            }
            let victim = try await RawBayeuxSocket.connect(port: port)

            // Traffic while the page loads and draws its sparkline.
            let traffic = Task {
                var sent = 0
                while !Task.isCancelled {
                    _ = try? await admin.request("POST", "/v1/publish", body: #"{"channel":"/stocks/AAPL","data":{"px":\#(sent)}}"#)
                    sent += 1
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }

            try await HeadlessChromium.with { page in
                // A wrong token: the page asks for the right one.
                try await page.navigate("http://127.0.0.1:\(admin.port)/#token=wrong")
                try await page.waitUntil("!document.querySelector('#login').hidden && document.querySelector('#login-error').textContent.includes('refused')")
                #expect(try await page.evaluate("location.hash") == .string(""), "the token is taken out of the address bar")
                #expect(try await page.evaluate("document.querySelector('#main').hidden") == .bool(true))

                // Typed into the form once, it is used from then on.
                try await page.evaluate("""
                    document.querySelector('#token').value = '\(AdminLiveTests.token)';
                    document.querySelector('#login').requestSubmit(); true
                    """)
                try await page.waitUntil("Number(document.body.dataset.refreshes || 0) >= 3 && !document.querySelector('#main').hidden")

                // The sparkline has drawn a non-zero rate while messages flowed.
                try await page.waitUntil("document.querySelector('#spark-delivered').getAttribute('points').split(' ').some(p => Number(p.split(',')[1]) < 78)")

                // Traffic stops; after two more refreshes the page shows settled counters.
                traffic.cancel()
                _ = await traffic.result
                let seen = try #require(try await page.evaluate("Number(document.body.dataset.refreshes)").intValue)
                try await page.waitUntil("Number(document.body.dataset.refreshes) >= \(seen + 2)")
                let shown = try #require(try await page.evaluate(Self.shownStats).objectValue)
                let stats = try #require(try await admin.request("GET", "/v1/stats").json)
                let number = { (name: String) in shown[name]?.stringValue.flatMap { Int($0.replacingOccurrences(of: ",", with: "")) } }
                #expect(number("connections") == stats["connections"]?["total"]?.intValue)
                #expect(number("connections") == 4)
                #expect(number("sessions") == stats["sessions"]?.intValue)
                #expect(number("subscriptions") == stats["subscriptions"]?.intValue)
                #expect(number("subscriptions") == 3)
                #expect(number("published") == stats["messages"]?["published"]?["total"]?.intValue)
                #expect(number("delivered") == stats["messages"]?["delivered"]?["total"]?.intValue)
                #expect((number("published") ?? 0) > 10)
                #expect(number("loggedChannels") == stats["channels"]?["logged"]?.intValue)
                #expect(shown["version"]?.stringValue == stats["version"]?.stringValue)
                #expect(shown["transports"]?.stringValue == "http 0, websocket 4")

                // The busiest channels, most subscribers first.
                let channels = try await page.evaluate("[...document.querySelectorAll('#channels tbody tr')].map(r => [...r.cells].slice(0, 2).map(c => c.textContent))")
                #expect(channels == .array([.array([.string("/stocks/AAPL"), .string("2")]), .array([.string("/stocks/MSFT"), .string("1")])]))

                // Every client, with a kick button that needs a second click.
                let rows = try #require(try await page.evaluate("[...document.querySelectorAll('#clients tbody tr')].map(r => r.dataset.clientId)").arrayValue).compactMap(\.stringValue)
                var expected = [victim.clientId]
                for client in subscribers { expected.append(await client.clientId) }
                #expect(Set(rows) == Set(expected))

                let screenshot = try await page.screenshot()
                try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
                try screenshot.write(to: Self.artifacts.appendingPathComponent("dashboard.png"))
                #expect(screenshot.starts(with: [0x89, 0x50, 0x4E, 0x47]))

                let button = "document.querySelector('#clients tr[data-client-id=\"\(victim.clientId)\"] button.kick')"
                try await page.evaluate("\(button).click(); true")
                #expect(try await page.evaluate("\(button).textContent") == .string("Confirm"))
                #expect(admin.live.broker.session(id: victim.clientId) != nil, "one click does not kick")
                try await page.evaluate("\(button).click(); true")
                let close = try #require(try await victim.ws.waitForCloseFrame())
                #expect(close.code == WebSocketErrorCode(codeNumber: 4002))
                #expect(close.reason == "disconnected from the dashboard")
                try await page.waitUntil("!document.querySelector('#clients tr[data-client-id=\"\(victim.clientId)\"]')")
            }
            for client in subscribers { await client.stop() }
        }
    }

    /// Without a token configured (loopback only), the page works with no prompt.
    @Test func withoutATokenThePageNeedsNone() async throws {
        try await AdminLiveTests().withAdmin(token: nil) { admin in
            try await HeadlessChromium.with { page in
                try await page.navigate("http://127.0.0.1:\(admin.port)/")
                try await page.waitUntil("Number(document.body.dataset.refreshes || 0) >= 1")
                #expect(try await page.evaluate("document.querySelector('#login').hidden") == .bool(true))
                #expect(try await page.evaluate("document.querySelector('[data-stat=\"sessions\"]').textContent") == .string("0"))
            }
        }
    }
}
