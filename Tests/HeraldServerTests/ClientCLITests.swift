import Foundation
import HeraldProtocol
import Testing

/// `herald pub` and `herald sub`, the real executable against a live Herald.
@Suite struct ClientCLITests {
    /// Runs `herald ARGS`, with `input` on stdin; returns status, stdout, stderr.
    static func herald(_ arguments: [String], input: String? = nil) async throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = CrashTests.heraldBinary
        process.arguments = arguments
        let output = Pipe(), errors = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        return try await ChildProcess.offThePool {
            let out = output.fileHandleForReading.readDataToEndOfFile()
            let err = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
        }
    }

    @Test func linesPipedIntoPubAreReadBackBySub() async throws {
        try await withLiveServer(broker: ClientLiveTests.feed()) { live in
            let url = "ws://127.0.0.1:\(live.port)/bayeux"
            let lines = (1...300).map { #"{"n":\#($0)}"# }.joined(separator: "\n") + "\n"
            let published = try await Self.herald(["pub", "/feed/cli", "-", "--url", url, "--window", "16"], input: lines)
            #expect(published.status == 0, "\(published.errors)")
            // All of the history, then exit after 300 messages.
            let read = try await Self.herald(["sub", "/feed/cli", "--url", url, "--replay", "-2", "--count", "300"])
            #expect(read.status == 0, "\(read.errors)")
            let received = read.output.split(separator: "\n").map { try? JSONParser.parse(String($0)) }
            #expect(received.count == 300)
            #expect(received.map { $0?["channel"]?.stringValue } == Array(repeating: "/feed/cli", count: 300))
            #expect(received.map { $0?["data"]?["n"]?.intValue } == (1...300).map { $0 })
            #expect(received.last??["ext"]?["herald"]?["offset"]?.intValue == 300)

            // One message, over long-polling.
            let single = try await Self.herald(["pub", "/feed/cli", #"{"n":301}"#, "--url", "http://127.0.0.1:\(live.port)/bayeux", "--transport", "long-polling"])
            #expect(single.status == 0, "\(single.errors)")
            #expect(live.broker.statistics.published == 301)
        }
    }

    /// `--retain` on a channel that retains: published, and a later subscriber gets it first;
    /// on one that does not: refused, and nothing was delivered.
    @Test func retainIsRefusedWhereTheChannelDoesNotRetain() async throws {
        try await withLiveServer(broker: ClientLiveTests.feed()) { live in
            let url = "ws://127.0.0.1:\(live.port)/bayeux"
            let kept = try await Self.herald(["pub", "/feed/last", #"{"px":7}"#, "--retain", "--url", url])
            #expect(kept.status == 0, "\(kept.errors)")
            let read = try await Self.herald(["sub", "/feed/last", "--url", url, "--count", "1"])
            #expect(read.status == 0, "\(read.errors)")
            let first = try JSONParser.parse(read.output.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(first["data"]?["px"]?.intValue == 7)
            #expect(first["ext"]?["herald"]?["retained"]?.boolValue == true)

            let refused = try await Self.herald(["pub", "/plain/x", "1", "--retain", "--url", url])
            #expect(refused.status == 1)
            #expect(refused.errors == "herald pub: publish refused (/plain/x): 400:/plain/x:Channel does not retain messages\n")
            let piped = try await Self.herald(["pub", "/plain/x", "-", "--retain", "--url", url, "--transport", "long-polling"], input: "1\n2\n")
            #expect(piped.status == 1)
            #expect(piped.errors.contains("400:/plain/x:Channel does not retain messages"))
            #expect(live.broker.statistics.published == 1, "only the retained one was published")
        }
    }

    @Test func aRefusalExitsNonZeroWithTheServersErrorOnOneLine() async throws {
        try await withLiveServer { live in
            let url = "ws://127.0.0.1:\(live.port)/bayeux"
            let refused = try await Self.herald(["pub", "/meta/nope", "1", "--url", url])
            #expect(refused.status == 1)
            #expect(refused.errors == "herald pub: publish refused (/meta/nope): 403:/meta/nope:Forbidden channel\n")

            let badLine = try await Self.herald(["pub", "/a", "-", "--url", url], input: "1\n{oops\n")
            #expect(badLine.status == 1)
            #expect(badLine.errors.contains("line 2 is not a JSON text"))

            let denied = try await Self.herald(["sub", "/meta/nope", "--url", url])
            #expect(denied.status == 1)
            #expect(denied.errors.hasPrefix("herald sub: subscription denied (/meta/nope): 403:"))
        }
        // Nothing listens there any more.
        let live = try await LiveServer.start()
        let port = live.port
        await live.stop()
        let unreachable = try await Self.herald(["sub", "/x", "--url", "ws://127.0.0.1:\(port)/bayeux"])
        #expect(unreachable.status == 1)
        #expect(unreachable.errors.hasPrefix("herald sub: server unreachable"))
        #expect(unreachable.errors.split(separator: "\n").count == 1)
        let badURL = try await Self.herald(["pub", "/x", "1", "--url", "ftp://nowhere"])
        #expect(badURL.status == 1)
        #expect(badURL.errors.hasPrefix("herald pub: invalid URL"))
    }
}
