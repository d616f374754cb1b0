import Foundation
import HeraldPostgres
import Logging
import NIOPosix
import PostgresNIO

/// A port no one listens on now (bound to 127.0.0.1:0, then released).
func freeLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: LiveServer.group).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

/// A throwaway PostgreSQL (Debian's `postgresql`), started by the test in a directory of its
/// own on a loopback port, through `Fixtures/postgres/pg.sh`.
final class PostgresServer: Sendable {
    let directory: String
    let port: Int

    /// `postgres://herald@127.0.0.1:PORT/postgres`.
    var url: String { "postgres://herald@127.0.0.1:\(port)/postgres" }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/postgres/pg.sh")

    static func start() async throws -> PostgresServer {
        let directory = NSTemporaryDirectory() + "herald-pg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var failures: [String] = []
        // A port found free may be taken before PostgreSQL binds it: then another.
        for _ in 0..<3 {
            let server = PostgresServer(directory: directory, port: try await freeLoopbackPort())
            let (status, output) = try await server.control("start", String(server.port))
            if status == 0 { return server }
            failures.append(output)
        }
        throw BayeuxTestClient.Failure(description: "PostgreSQL did not start: \(failures.joined(separator: "\n"))")
    }

    @discardableResult
    private func control(_ command: String, _ extra: String...) async throws -> (Int32, String) {
        try await ChildProcess.run(URL(fileURLWithPath: "/bin/bash"), [Self.script.path, command, directory + "/data"] + extra)
    }

    /// A fast shutdown (sessions ended, as on a restart).
    func stop() async throws { try await control("stop") }

    /// Starts again on the same port and data.
    func restart() async throws {
        let (status, output) = try await control("start", String(port))
        guard status == 0 else { throw BayeuxTestClient.Failure(description: "PostgreSQL did not restart: \(output)") }
    }

    /// The first column of the first row of `sql`, as text (Debian's `psql`).
    func scalar(_ sql: String) async throws -> String {
        let (status, output) = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/psql"), ["-h", "127.0.0.1", "-p", String(port), "-U", "herald", "-d", "postgres", "-tAc", sql])
        guard status == 0 else { throw BayeuxTestClient.Failure(description: "psql failed: \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops it and removes its directory.
    func destroy() async {
        _ = try? await control("kill")
        try? FileManager.default.removeItem(atPath: directory)
    }
}
