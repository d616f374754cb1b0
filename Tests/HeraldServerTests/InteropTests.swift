import Foundation
import HeraldCore
import Testing

/// Interop with real third-party clients: Faye's Ruby client (Debian `ruby-faye`) and
/// aiocometd-ng (PyPI), both in the same run so each receives the other's messages.
///
/// `Fixtures/interop/run_pair.sh` coordinates the two client processes (line protocol in its
/// README) and checks: handshake, subscribe (exact, `*` and `**`), publish and receive with
/// data intact and in order, unsubscribe (nothing arrives afterwards) and disconnect.
/// Runs when `HERALD_INTEROP=1`; `.ci/run` installs the clients and sets it.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "1", "needs ruby-faye and aiocometd-ng; .ci/run sets HERALD_INTEROP=1"))
struct InteropTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/interop")

    @Test(arguments: [
        ("faye:websocket", "aiocometd:websocket"),
        ("faye:long-polling", "aiocometd:long-polling"),
        ("faye:websocket", "aiocometd:long-polling"),
        ("faye:long-polling", "aiocometd:websocket"),
    ])
    func fayeAndAiocometdTogether(faye: String, aiocometd: String) async throws {
        try await withLiveServer { live in
            let (status, output) = try await Self.runPair(port: live.port, faye, aiocometd)
            #expect(status == 0, "run_pair failed:\n\(output)")
            #expect(output.hasSuffix("PASS\n"), "run_pair did not pass:\n\(output)")
            // Both clients ended their sessions with /meta/disconnect.
            #expect(live.broker.sessionCount == 0)
        }
    }

    /// With tokens required, sessions are bound to their client (`SessionBinding`): Faye keeps
    /// the `BAYEUX_BROWSER` cookie of its long-polling handshake and brings it to the
    /// WebSocket upgrade; aiocometd presents its token again on every request. Both keep
    /// working, across the move from long-polling to WebSocket, and nothing is refused.
    @Test(arguments: [
        ("faye:websocket", "aiocometd:websocket"),
        ("faye:long-polling", "aiocometd:long-polling"),
    ])
    func authenticatedClients(faye: String, aiocometd: String) async throws {
        try await AuthTests.withAuthServer { live in
            let token = try await AuthTests.token(subject: "interop", expires: 600)
            let (status, output) = try await Self.runPair(port: live.port, faye, aiocometd, environment: ["HERALD_TOKEN": token])
            #expect(status == 0, "run_pair failed:\n\(output)")
            #expect(output.hasSuffix("PASS\n"), "run_pair did not pass:\n\(output)")
            #expect(live.broker.sessionCount == 0)
            #expect(live.broker.limits.count(.sessionBinding) == 0)
            #expect(live.broker.limits.count(.authentication) == 0)
        }
    }

    static func runPair(port: Int, _ a: String, _ b: String, environment: [String: String] = [:]) async throws -> (Int32, String) {
        try await ChildProcess.run(fixtures.appendingPathComponent("run_pair.sh"), ["http://127.0.0.1:\(port)/bayeux", a, b, "20"], environment: environment)
    }
}
