import Foundation
import NIOCore
import NIOPosix

/// A real Faye 1.4 server (Debian `ruby-faye` under `puma`) on 127.0.0.1 and a free port, for
/// testing HeraldClient against a third-party Bayeux server over WebSocket and long-polling.
///
/// `Fixtures/interop/faye_server.sh` runs `faye_server.ru` (mount `/bayeux`, timeout 25 s) and
/// execs Puma, so `process` is Puma itself and `stop()` ends it. Needs
/// `apt-get install -y ruby-faye puma`; gate tests on `HERALD_INTEROP=1` as `InteropTests` does.
///
/// What a client meets in Faye 1.4 (seen on the wire against this fixture):
/// - every `/meta/connect` is held up to the timeout (25 s, or the client's `advice.timeout`),
///   the first one too; over WebSocket deliveries are pushed in frames of their own while the
///   connect stays held, over long-polling they come in the held connect's response.
/// - a second `/meta/connect` while one is held orphans the first (never answered).
/// - deliveries keep the publisher's `id`; over WebSocket the publisher's own delivery comes
///   before its publish ack.
/// - long-polling responses carry no `Connection: close`, yet Puma closes the socket after each.
struct FayeServer: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let process: Process
    let port: Int
    /// Puma's stdout and stderr: its start-up lines ("* Listening on http://127.0.0.1:PORT")
    /// and anything Faye logs.
    let log: URL

    /// The long-polling endpoint.
    var url: String { "http://127.0.0.1:\(port)/bayeux" }
    /// The WebSocket endpoint.
    var webSocketURL: String { "ws://127.0.0.1:\(port)/bayeux" }

    /// What Puma has written so far.
    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/interop/faye_server.sh")

    /// Starts Faye on a free port and returns once Puma has logged its listening line and Faye
    /// answers a handshake (well under a second when idle; `timeout` leaves room for a loaded
    /// machine).
    static func start(timeout: Duration = .seconds(20)) async throws -> FayeServer {
        var attempts: [String] = []
        // A port found free may be taken again before Puma binds it: then try another.
        for _ in 0..<3 {
            let port = try await freeLoopbackPort()
            let server = try launch(port: port)
            let deadline = ContinuousClock.now + timeout
            do {
                while server.process.isRunning {
                    // Puma's own listening line first: a server that took the port meanwhile
                    // (another test's) could answer the handshake too.
                    if server.output.contains("Listening on http://127.0.0.1:\(server.port)"), await server.answersHandshake() { return server }
                    guard ContinuousClock.now < deadline else {
                        throw Failure(description: "faye_server.sh gave no handshake on port \(server.port) within \(timeout):\n\(server.output)")
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
            } catch {
                server.stop()
                throw error
            }
            let output = server.output
            server.stop()
            guard output.contains("Address already in use") else {
                throw Failure(description: "faye_server.sh exited (apt-get install -y ruby-faye puma?):\n\(output)")
            }
            attempts.append(output)
        }
        throw Failure(description: "faye_server.sh found no free port:\n" + attempts.joined(separator: "\n---\n"))
    }

    /// Runs `body` against a fresh Faye server and always stops it.
    static func with<T>(_ body: (FayeServer) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let result = try await body(server)
            server.stop()
            return result
        } catch {
            server.stop()
            throw error
        }
    }

    /// SIGTERM (Puma exits at once, dropping held connections), SIGKILL if it is still there
    /// after 5 s, then waits for it. Idempotent.
    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: log)
    }

    /// True when a POSTed `/meta/handshake` comes back successful.
    func answersHandshake() async -> Bool {
        let handshake = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"],"id":"ready"}]"#
        guard let response = try? await TestHTTP.postJSON(handshake, port: port, timeout: .seconds(2), on: LiveServer.group),
            response.status == 200,
            let reply = try? response.json().first
        else { return false }
        return reply["successful"] as? Bool == true
    }

    private static func launch(port: Int) throws -> FayeServer {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("herald-faye-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil), let output = FileHandle(forWritingAtPath: log.path) else {
            throw Failure(description: "cannot create \(log.path)")
        }
        let process = Process()
        // Through sh, so the script need not keep its executable bit when copied.
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script.path, String(port)]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return FayeServer(process: process, port: port, log: log)
    }
}
