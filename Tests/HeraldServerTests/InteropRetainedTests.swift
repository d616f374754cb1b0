import Foundation
import HeraldCore
import HeraldProtocol
import Testing

/// Retained values with real third-party clients: Faye's Ruby client (Debian `ruby-faye`) and
/// aiocometd-ng (PyPI), each over WebSocket and long-polling.
///
/// The server publishes three prices to `/stocks/AAPL` (channels
/// `{"/stocks/**": {"retain": true, "historySize": 10}}`) before any client exists. Each client
/// script (`Fixtures/interop/retained_faye.rb`, `retained_aiocometd.py`) subscribes and prints
/// the first message it gets (`FIRST {…}`): it must be the third price, marked retained, with
/// offset 3. The script then publishes one live message and prints the next (`NEXT {…}`): the
/// live one, offset 4, same epoch, not marked retained. Then it disconnects and exits 0.
/// Runs when `HERALD_INTEROP=1`, like `InteropTests`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HERALD_INTEROP"] == "1", "needs ruby-faye and aiocometd-ng; .ci/run sets HERALD_INTEROP=1"))
struct InteropRetainedTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/interop")

    static let prices: [(seq: Int, price: String)] = [(1, "187.25"), (2, "188.5"), (3, "189.75")]

    @Test(arguments: [
        ("faye", "websocket"),
        ("faye", "long-polling"),
        ("aiocometd", "websocket"),
        ("aiocometd", "long-polling"),
    ])
    func retainedValueFirstThenLive(client: String, transport: String) async throws {
        let options = try JSONParser.parse(#"{"/stocks/**": {"retain": true, "historySize": 10}}"#).objectValue!
        let channels = try ChannelPolicyTable.parse(options)
        try await withLiveServer(broker: { $0.channels = channels }) { live in
            let channel = ChannelName("/stocks/AAPL")!
            for (seq, price) in Self.prices {
                try live.broker.publish(channel, json: #"{"symbol":"AAPL","seq":\#(seq),"price":\#(price)}"#)
            }
            let (status, output) = try await Self.run(client, url: "http://127.0.0.1:\(live.port)/bayeux", channel: channel.rawValue, transport: transport)
            #expect(status == 0, "\(client) over \(transport) failed:\n\(output)")
            guard let first = Self.line("FIRST", in: output), let next = Self.line("NEXT", in: output) else {
                Issue.record("\(client) over \(transport): no FIRST/NEXT line:\n\(output)")
                return
            }
            let context = "\(client) over \(transport):\n\(output)"

            // The first message is the last value published before the subscribe, retained.
            #expect(first["channel"]?.stringValue == "/stocks/AAPL", "\(context)")
            #expect(first["transport"]?.stringValue == transport, "\(context)")
            let firstData = first["data"]?.objectValue
            #expect(firstData?["symbol"]?.stringValue == "AAPL", "\(context)")
            #expect(firstData?["seq"]?.intValue == 3, "\(context)")
            #expect(firstData?["price"]?.doubleValue == 189.75, "\(context)")
            let firstHerald = first["ext"]?.objectValue?["herald"]?.objectValue
            #expect(firstHerald?["retained"]?.boolValue == true, "\(context)")
            #expect(firstHerald?["offset"]?.intValue == 3, "\(context)")

            // The next one is the client's own live publish: next offset, same epoch, not retained.
            #expect(next["channel"]?.stringValue == "/stocks/AAPL", "\(context)")
            #expect(next["transport"]?.stringValue == transport, "\(context)")
            #expect(next["data"]?.objectValue?["live"]?.boolValue == true, "\(context)")
            let nextHerald = next["ext"]?.objectValue?["herald"]?.objectValue
            #expect(nextHerald?["offset"]?.intValue == 4, "\(context)")
            #expect(nextHerald?["retained"] == nil, "\(context)")
            #expect(nextHerald?["epoch"]?.stringValue != nil, "\(context)")
            #expect(nextHerald?["epoch"] == firstHerald?["epoch"], "\(context)")

            // The client ended its session with /meta/disconnect.
            #expect(live.broker.sessionCount == 0, "\(context)")
        }
    }

    /// The JSON object after `word ` on the first line that starts with it.
    static func line(_ word: String, in output: String) -> JSONObject? {
        for line in output.split(separator: "\n") where line.hasPrefix(word + " ") {
            return (try? JSONParser.parse(String(line.dropFirst(word.count + 1))))?.objectValue
        }
        return nil
    }

    /// Runs a client script (interpreter from `RUBY` / `PYTHON`, else `ruby` / `python3` on the
    /// PATH); returns its exit status and its stdout and stderr together.
    static func run(_ client: String, url: String, channel: String, transport: String) async throws -> (Int32, String) {
        let environment = ProcessInfo.processInfo.environment
        let interpreter: String
        let script: String
        switch client {
        case "faye":
            interpreter = environment["RUBY"] ?? "ruby"
            script = "retained_faye.rb"
        default:
            interpreter = environment["PYTHON"] ?? "python3"
            script = "retained_aiocometd.py"
        }
        return try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/env"), [interpreter, fixtures.appendingPathComponent(script).path, url, channel, transport])
    }
}
