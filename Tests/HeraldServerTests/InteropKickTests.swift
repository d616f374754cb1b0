import Foundation
import HeraldProtocol
import Synchronization
import Testing

/// An operator's kick (`DELETE /v1/clients/{id}?reason=`) as Faye's Ruby client sees it, over
/// both transports: it is told the reason in a `/meta/connect` reply with
/// `reconnect: none` (its held connect is answered before a WebSocket is closed), and does not
/// come back with a new handshake. A client kicked between two connects is told on its next
/// one (`KickedClients`; `BrokerTests.aKickedClientIsToldWhyAndNotToComeBackUntilForgotten`).
/// Runs when `HERALD_INTEROP=1`, like `InteropTests`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "1", "needs ruby-faye; .ci/run sets HERALD_INTEROP=1"))
struct InteropKickTests {
    @Test(arguments: ["websocket", "long-polling"])
    func aKickedFayeClientIsToldWhyAndStaysAway(transport: String) async throws {
        try await AdminLiveTests().withAdmin { admin in
            let faye = try LineProcess(
                URL(fileURLWithPath: "/usr/bin/ruby"),
                [InteropTests.fixtures.appendingPathComponent("kicked_faye.rb").path, "http://127.0.0.1:\(admin.live.port)/bayeux", transport, "/kick/me"]
            )
            defer { faye.stop() }
            let ready = try #require(try await faye.nextLine { $0["ready"] != nil }, "the Faye client never got ready:\n\(faye.seen)")
            let clientId = try #require(ready["ready"]?.stringValue)
            #expect(admin.live.broker.session(id: clientId) != nil)

            let kicked = try await admin.request("DELETE", "/v1/clients/\(clientId)?reason=maintenance%20window")
            #expect(kicked.status == 200)

            // The reason reaches the client in a connect reply (over WebSocket after the close
            // frame, when Faye sends its connect again), with advice not to reconnect.
            let told = try await faye.nextLine(timeout: .seconds(20)) { $0["meta"] == .string("/meta/connect") && $0["successful"] == .bool(false) }
            #expect(told?["error"] == .string("402:maintenance window:Unknown client"), "lines: \(faye.seen)")
            #expect(told?["advice"]?["reconnect"] == .string("none"))

            // And it stays away: no new handshake, no new session.
            let again = try await faye.nextLine(timeout: .seconds(2)) { $0["meta"] == .string("/meta/handshake") }
            #expect(again == nil, "the kicked client handshook again: \(faye.seen)")
            #expect(admin.live.broker.sessionCount == 0)
        }
    }
}

/// A child process whose stdout is read as JSON lines, one at a time; closing its stdin
/// (`stop()`) ends it.
final class LineProcess: Sendable {
    let process: Process
    let input: Pipe
    let lines: AsyncStream<String>
    let iterator: IteratorBox
    let log = LineLog()

    final class IteratorBox: @unchecked Sendable {
        var iterator: AsyncStream<String>.Iterator
        init(_ iterator: AsyncStream<String>.Iterator) { self.iterator = iterator }
    }

    init(_ executable: URL, _ arguments: [String]) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        lines = stream
        iterator = IteratorBox(stream.makeAsyncIterator())
        try process.run()
        Thread {
            var line: [UInt8] = []
            // `availableData` returns what the pipe has (`read(upToCount:)` waits to fill).
            while case let chunk = output.fileHandleForReading.availableData, !chunk.isEmpty {
                for byte in chunk {
                    if byte == 0x0A {
                        continuation.yield(String(decoding: line, as: UTF8.self))
                        line.removeAll()
                    } else {
                        line.append(byte)
                    }
                }
            }
            continuation.finish()
        }.start()
    }

    /// Every line read so far, for failure messages.
    var seen: String { log.text }

    /// The next line matching `predicate` (others are skipped), or nil if none comes within
    /// `timeout` or the process ends.
    func nextLine(timeout: Duration = .seconds(30), where predicate: @escaping @Sendable (JSONValue) -> Bool) async throws -> JSONValue? {
        let box = iterator
        let log = log
        return try await withThrowingTaskGroup(of: JSONValue?.self) { group in
            group.addTask {
                while let line = await box.iterator.next() {
                    log.append(line)
                    if let value = try? JSONParser.parse(line), predicate(value) { return value }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.terminate()
    }
}

/// Lines kept for a failure message.
final class LineLog: Sendable {
    let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}
