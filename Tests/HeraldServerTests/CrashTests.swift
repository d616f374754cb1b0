import Foundation
import Synchronization
import GRDB
import HeraldProtocol
import Testing

/// `kill -9` the real `herald` process while it publishes to a durable channel at full speed,
/// restart it on the same data directory, and check that nothing acknowledged is missing.
@Suite struct CrashTests {
    /// The `herald` executable built next to the test bundle.
    static var heraldBinary: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("herald")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/herald")
    }

    /// A running `herald serve` and the ports it printed.
    struct ServerProcess {
        let process: Process
        let port: Int
        let adminPort: Int

        static func start(dataDirectory: String, config: String? = nil, port: Int = 0, arguments: [String] = []) async throws -> ServerProcess {
            let process = Process()
            process.executableURL = CrashTests.heraldBinary
            process.arguments = ["serve", "--host", "127.0.0.1", "--port", String(port), "--admin-port", "0", "--data-dir", dataDirectory, "--log-level", "error"]
                + (config.map { ["--config", $0] } ?? []) + arguments
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            // "herald listening data=http://127.0.0.1:PORT/bayeux admin=http://127.0.0.1:PORT"
            let line = try await ChildProcess.firstLine(of: output)
            guard let match = line.firstMatch(of: /data=http:\/\/127\.0\.0\.1:(\d+)\/.* admin=http:\/\/127\.0\.0\.1:(\d+)/),
                let port = Int(match.1), let adminPort = Int(match.2)
            else {
                process.terminate()
                throw BayeuxTestClient.Failure(description: "no listening line: \(line)")
            }
            return ServerProcess(process: process, port: port, adminPort: adminPort)
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    @Test func killDashNineLosesNoAcknowledgedDurablePublish() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.heraldBinary.path), "build the herald executable first")
        let directory = NSTemporaryDirectory() + "herald-crash-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/herald.json"
        try #"{"channels": {"/orders/*": {"historySize": 1000000, "retain": true, "durable": true}}}"#.write(toFile: config, atomically: true, encoding: .utf8)

        // Run 1: publish as fast as acknowledgements come back, then kill -9 mid-stream.
        let first = try await ServerProcess.start(dataDirectory: directory, config: config)
        let watcher = try await RawBayeuxSocket.connect(port: first.port)
        _ = try await watcher.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(watcher.clientId)","subscription":"/orders/a","id":"s"}"#], expectReplies: 1)
        let publisher = try await RawBayeuxSocket.connect(port: first.port)
        let acknowledged = AckLog()
        let publishing = Task {
            var n = 0
            while true {
                let batch = (0..<20).map { i in #"{"channel":"/orders/a","clientId":"\#(publisher.clientId)","data":\#(n + i),"id":"\#(n + i)"}"# }
                guard let replies = try? await publisher.exchange(batch, expectReplies: 20) else { return }
                for reply in replies where reply["successful"] == .bool(true) {
                    if let id = reply["id"]?.stringValue, let value = Int(id) { acknowledged.add(value) }
                }
                n += 20
            }
        }
        // Mid-stream: once a few hundred are acknowledged (more than enough to prove
        // anything), however long a loaded machine takes to get there.
        let started = ContinuousClock.now
        while acknowledged.values.count < 300, ContinuousClock.now - started < .seconds(15) {
            try await Task.sleep(for: .milliseconds(100))
        }
        let seen = (try? await watcher.events(1, timeout: .seconds(1))) ?? []
        first.kill9()
        _ = await publishing.result
        let acked = acknowledged.values
        #expect(acked.count > 100, "too few publishes acknowledged (\(acked.count)) to prove anything")
        let offsetsSeenBeforeCrash = seen.compactMap { $0["ext"]?["herald"]?["offset"]?.intValue }

        // The database opens without repair.
        let pool = try DatabasePool(path: directory + "/herald.sqlite")
        #expect(try await pool.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
        try pool.close()

        // Run 2: everything acknowledged is there, in order, once; offsets go on without reuse.
        let second = try await ServerProcess.start(dataDirectory: directory, config: config)
        defer { second.process.terminate(); second.process.waitUntilExit() }
        let reader = try await RawBayeuxSocket.connect(port: second.port)
        let reply = try await reader.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(reader.clientId)","subscription":"/orders/a","id":"r","ext":{"replay":{"/orders/a":-2}}}"#], expectReplies: 1)
        #expect(reply.first?["successful"] == .bool(true))
        let replayed = try await reader.events(acked.count, timeout: .seconds(30))
        let values = replayed.compactMap { $0["data"]?.intValue }
        let offsets = replayed.compactMap { $0["ext"]?["herald"]?["offset"]?.intValue }
        #expect(Set(acked).isSubset(of: Set(values)), "acknowledged but missing: \(Set(acked).subtracting(values).sorted().prefix(10))")
        #expect(offsets == offsets.sorted() && Set(offsets).count == offsets.count)
        #expect(values == values.sorted())

        let latePublisher = try await RawBayeuxSocket.connect(port: second.port)
        _ = try await latePublisher.exchange([#"{"channel":"/orders/a","clientId":"\#(latePublisher.clientId)","data":"after","id":"x"}"#], expectReplies: 1)
        let after = try await reader.events(1)
        let newOffset = try #require(after.last?["ext"]?["herald"]?["offset"]?.intValue)
        #expect(newOffset > (offsets.max() ?? 0))
        #expect(newOffset > (offsetsSeenBeforeCrash.max() ?? 0))
        await reader.close()
        await latePublisher.close()
    }
}

/// Publish acknowledgements, collected from a task.
final class AckLog: Sendable {
    let state = Mutex<[Int]>([])
    func add(_ value: Int) { state.withLock { $0.append(value) } }
    var values: [Int] { state.withLock { $0 } }
}
