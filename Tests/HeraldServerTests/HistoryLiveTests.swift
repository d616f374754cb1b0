import Foundation
import HeraldCore
import HeraldProtocol
import HeraldSQLite
import Testing

/// Retained values, replay and resume over real sockets, and persistence across restarts.
@Suite struct HistoryLiveTests {
    typealias Transport = BayeuxTestClient.Transport

    static func stocks(_ c: inout BrokerConfiguration) {
        c.channels = try! ChannelPolicyTable.parse(JSONParser.parse(#"{"/stocks/**": {"retain": true, "historySize": 1000, "persist": true}}"#).objectValue!)
    }

    static func temporaryDatabase() -> String {
        NSTemporaryDirectory() + "herald-live-\(UUID().uuidString).sqlite"
    }

    func offsets(_ events: [JSONValue]) -> [Int] { events.compactMap { $0["ext"]?["herald"]?["offset"]?.intValue } }

    @Test(arguments: Transport.allCases)
    func retainedOnSubscribeThenLive(transport: Transport) async throws {
        try await withLiveServer(broker: Self.stocks) { live in
            for (channel, price) in [("/stocks/AAPL", 1), ("/stocks/AAPL", 2), ("/stocks/MSFT", 7), ("/stocks/eu/SAP", 9)] {
                try live.broker.publish(ChannelName(channel)!, json: #"{"p":\#(price)}"#)
            }
            let exact = BayeuxTestClient(port: live.port, transport: transport)
            let wildcard = BayeuxTestClient(port: live.port, transport: transport)
            try await exact.start()
            try await wildcard.start()
            #expect(try await exact.subscribe("/stocks/AAPL")["successful"] == .bool(true))
            #expect(try await wildcard.subscribe("/stocks/**")["successful"] == .bool(true))
            try live.broker.publish(ChannelName("/stocks/AAPL")!, json: #"{"p":3}"#)
            let e = try await exact.waitForEvents(2)
            #expect(e.map { $0["data"]?["p"] } == [.number("2"), .number("3")])
            #expect(e[0]["ext"]?["herald"]?["retained"] == .bool(true))
            #expect(offsets(e) == [2, 3])
            let w = try await wildcard.waitForEvents(4)
            #expect(w.map { $0["channel"]?.stringValue } == ["/stocks/AAPL", "/stocks/MSFT", "/stocks/eu/SAP", "/stocks/AAPL"])
            #expect(w.map { $0["data"]?["p"] } == [.number("2"), .number("7"), .number("9"), .number("3")])
            await exact.stop()
            await wildcard.stop()
        }
    }

    @Test(arguments: Transport.allCases)
    func replayEverythingAfterAnOffsetAndRefusals(transport: Transport) async throws {
        try await withLiveServer(broker: Self.stocks) { live in
            for p in 1...10 { try live.broker.publish(ChannelName("/stocks/T")!, json: String(p)) }
            let client = BayeuxTestClient(port: live.port, transport: transport)
            try await client.start()
            let all = try await client.subscribe("/stocks/T", ext: #"{"replay":{"/stocks/T":-2}}"#)
            #expect(all["ext"]?["herald"]?["recovered"] == .bool(true))
            let events = try await client.waitForEvents(10)
            #expect(offsets(events) == Array(1...10))
            let epoch = try #require(events[0]["ext"]?["herald"]?["epoch"]?.stringValue)
            _ = try await client.unsubscribe("/stocks/T")

            let other = BayeuxTestClient(port: live.port, transport: transport)
            try await other.start()
            _ = try await other.subscribe("/stocks/T", ext: #"{"replay":{"/stocks/T":{"offset":7,"epoch":"\#(epoch)"}}}"#)
            #expect(offsets(try await other.waitForEvents(3)) == [8, 9, 10])

            let wrong = try await other.subscribe("/stocks/T", ext: #"{"replay":{"/stocks/T":{"offset":7,"epoch":"0000000000000000"}}}"#)
            #expect(wrong["successful"] == .bool(false))
            #expect(wrong["error"] == .string("409:/stocks/T,0000000000000000:Epoch changed"))
            #expect(wrong["ext"]?["herald"]?["recovered"] == .bool(false))
            let future = try await other.subscribe("/stocks/T", ext: #"{"replay":{"/stocks/T":99}}"#)
            #expect(future["error"] == .string("410:/stocks/T,99:Replay position unknown"))
            await client.stop()
            await other.stop()
        }
    }

    /// A subscriber's connection drops while messages keep flowing; it comes back as a new
    /// session and resumes from the last offset it saw: every message exactly once, in order.
    @Test(arguments: Transport.allCases)
    func resumeAfterADroppedConnectionHasNoGapAndNoDuplicate(transport: Transport) async throws {
        try await withLiveServer(broker: Self.stocks) { live in
            let total = 600
            let publisher = try await RawBayeuxSocket.connect(port: live.port)
            let publishing = Task {
                for n in 1...total {
                    _ = try await publisher.exchange([#"{"channel":"/stocks/feed","clientId":"\#(publisher.clientId)","data":\#(n),"id":"\#(n)"}"#], expectReplies: 1)
                    if n % 20 == 0 { try await Task.sleep(for: .milliseconds(2)) }
                }
            }
            let first = BayeuxTestClient(port: live.port, transport: transport)
            try await first.start()
            _ = try await first.subscribe("/stocks/feed", ext: #"{"replay":{"/stocks/feed":-2}}"#)
            let seenBefore = try await first.waitForEvents(100, timeout: .seconds(20))
            await first.stop()   // the connection drops; the session is abandoned
            let epoch = try #require(seenBefore.last?["ext"]?["herald"]?["epoch"]?.stringValue)
            let last = try #require(offsets(seenBefore).last)
            try await Task.sleep(for: .milliseconds(50))   // more messages are published meanwhile

            let second = BayeuxTestClient(port: live.port, transport: transport)
            try await second.start()
            let reply = try await second.subscribe("/stocks/feed", ext: #"{"replay":{"/stocks/feed":{"offset":\#(last),"epoch":"\#(epoch)"}}}"#)
            #expect(reply["successful"] == .bool(true), "\(reply.jsonText)")
            try await publishing.value
            let seenAfter = try await second.waitForEvents(total - last, timeout: .seconds(20))
            let all = offsets(seenBefore) + offsets(seenAfter)
            #expect(all == Array(1...total))
            #expect(seenAfter.map { $0["data"]?.intValue } == (1...total).filter { $0 > last })
            await second.stop()
            await publisher.close()
        }
    }

    /// A server restarted on the same SQLite file serves the same retained values and history,
    /// in the same epoch, and continues the offsets.
    @Test func restartRestoresRetainedHistoryOffsetsAndEpochs() async throws {
        let path = Self.temporaryDatabase()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        var epoch: JSONValue?
        try await withLiveServer(store: SQLiteMessageStore(path: path), broker: Self.stocks) { live in
            let client = BayeuxTestClient(port: live.port, transport: .websocket)
            try await client.start()
            _ = try await client.subscribe("/stocks/AAPL")
            for p in 1...5 { _ = try await client.publish("/stocks/AAPL", String(p)) }
            epoch = try await client.waitForEvents(5).last?["ext"]?["herald"]?["epoch"]
            await client.stop()
        }
        try await withLiveServer(store: SQLiteMessageStore(path: path), broker: Self.stocks) { live in
            let retained = BayeuxTestClient(port: live.port, transport: .longPolling)
            try await retained.start()
            _ = try await retained.subscribe("/stocks/*")
            let value = try await retained.waitForEvents(1)
            #expect(value.first?["data"] == .number("5"))
            #expect(value.first?["ext"]?["herald"]?["epoch"] == epoch)

            let replay = BayeuxTestClient(port: live.port, transport: .websocket)
            try await replay.start()
            _ = try await replay.subscribe("/stocks/AAPL", ext: #"{"replay":{"/stocks/AAPL":-2}}"#)
            #expect(offsets(try await replay.waitForEvents(5)) == [1, 2, 3, 4, 5])
            _ = try await replay.publish("/stocks/AAPL", "6")
            let next = try await replay.waitForEvents(6).last
            #expect(next?["ext"]?["herald"]?["offset"] == .number("6"))
            #expect(next?["ext"]?["herald"]?["epoch"] == epoch)
            await retained.stop()
            await replay.stop()
        }
    }
}
