import HeraldCore
import HeraldProtocol
import HeraldServer
import NIOCore
import Testing

/// Slow consumers over real sockets: a subscriber that stops reading (a raw socket with a
/// tiny receive buffer) next to a fast one.
@Suite struct SlowConsumerLiveTests {
    static func channels(_ json: String) -> (inout BrokerConfiguration) -> Void {
        { c in
            c.channels = try! ChannelPolicyTable.parse(JSONParser.parse(json).objectValue!)
            c.maxPendingBytesPerSession = 64 * 1024
        }
    }

    static func smallBuffers(_ c: inout ServerConfiguration) {
        c.writeBufferHighWaterMarkBytes = 32 * 1024
        c.writeBufferLowWaterMarkBytes = 8 * 1024
    }

    /// A WebSocket Bayeux subscriber spoken by hand over a socket that reads only when asked.
    struct StalledSubscriber {
        let tcp: RawTCP
        let clientId: String

        static func connect(port: Int, subscription: String) async throws -> StalledSubscriber {
            let tcp = try await RawTCP.connect(port: port, autoRead: false, receiveBufferSize: 4096, on: LiveServer.group)
            try await tcp.write("GET /bayeux HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            _ = try await tcp.read()
            try await tcp.write(ServerFrames.maskedTextFrame(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"1"}]"#))
            let handshake = String(decoding: try await tcp.read() ?? [], as: UTF8.self)
            guard let clientId = handshake.firstMatch(of: /"clientId":"([0-9a-f]+)"/)?.1 else { throw BayeuxTestClient.Failure(description: handshake) }
            try await tcp.write(ServerFrames.maskedTextFrame(#"[{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"websocket","id":"2","advice":{"timeout":0}},{"channel":"/meta/subscribe","clientId":"\#(clientId)","subscription":"\#(subscription)","id":"3"}]"#))
            _ = try await tcp.read()
            return StalledSubscriber(tcp: tcp, clientId: String(clientId))
        }

        /// Reads everything until EOF or `quiet` passes without data; returns the frames.
        func readFrames(quiet: Duration = .seconds(2)) async throws -> [(opcode: UInt8, payload: [UInt8])] {
            var bytes: [UInt8] = []
            while let chunk = try? await tcp.read(timeout: quiet) { bytes += chunk }
            return ServerFrames.parse(bytes)
        }
    }

    @Test func conflatingSubscriberEndsWithTheLatestOfEveryChannel() async throws {
        try await withLiveServer(broker: Self.channels(#"{"/px/*": {"slowConsumer": "conflate"}}"#), server: Self.smallBuffers) { live in
            let fast = try await RawBayeuxSocket.connect(port: live.port)
            _ = try await fast.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(fast.clientId)","subscription":"/px/*","id":"s"}"#], expectReplies: 1)
            let slow = try await StalledSubscriber.connect(port: live.port, subscription: "/px/*")
            let session = try #require(live.broker.session(id: slow.clientId))

            let publisher = try await RawBayeuxSocket.connect(port: live.port)
            let pad = String(repeating: "p", count: 1000)
            let total = 4000
            var maxPending = 0
            var fastEvents: [JSONValue] = []
            for batch in 0..<(total / 50) {
                let messages = (0..<50).map { i in
                    let n = batch * 50 + i
                    return #"{"channel":"/px/s\#(n % 8)","clientId":"\#(publisher.clientId)","data":{"n":\#(n),"pad":"\#(pad)"},"id":"\#(n)"}"#
                }
                _ = try await publisher.exchange(messages, expectReplies: 50)
                maxPending = max(maxPending, session.pendingBytes)
                // The fast subscriber keeps up: each batch (about 51 KB) is read before the next
                // is published. Without this pacing, a test run that keeps its event loop busy
                // lets two batches queue up for it, past `maxPendingBytesPerSession` (64 KiB),
                // and conflation then rightly starts for it too (PROTOCOL.md §11.9).
                fastEvents += try await fast.events(50, timeout: .seconds(10))
            }
            #expect(fastEvents.map { $0["data"]?["n"]?.intValue } == (0..<total).map { $0 })
            // The slow one was never cut off, and its queue stayed bounded.
            #expect(!session.isClosed)
            #expect(maxPending <= 64 * 1024 + 8 * 1100)
            #expect(live.broker.counters.dropped.load(ordering: .relaxed) > 0)
            #expect(live.broker.counters.slowConsumers.load(ordering: .relaxed) == 0)

            // Now it reads: the last value it sees on each channel is the last one published.
            var latest: [String: Int] = [:]
            for frame in try await slow.readFrames() where frame.opcode == 0x1 {
                guard case .array(let items)? = try? JSONParser.parse(String(decoding: frame.payload, as: UTF8.self)) else { continue }
                for item in items {
                    if let channel = item["channel"]?.stringValue, let n = item["data"]?["n"]?.intValue { latest[channel] = n }
                }
            }
            #expect(latest == Dictionary(uniqueKeysWithValues: (0..<8).map { ("/px/s\($0)", total - 8 + $0) }))
            await slow.tcp.close()
            await publisher.close()
            await fast.close()
        }
    }

    @Test func disconnectPolicyClosesWithTheReason() async throws {
        try await withLiveServer(broker: Self.channels(#"{"/log/*": {"slowConsumer": "disconnect"}}"#), server: Self.smallBuffers) { live in
            let slow = try await StalledSubscriber.connect(port: live.port, subscription: "/log/*")
            let publisher = try await RawBayeuxSocket.connect(port: live.port)
            let pad = String(repeating: "p", count: 1000)
            for batch in 0..<60 {
                let messages = (0..<50).map { i in #"{"channel":"/log/a","clientId":"\#(publisher.clientId)","data":{"n":\#(batch * 50 + i),"pad":"\#(pad)"},"id":"\#(i)"}"# }
                _ = try await publisher.exchange(messages, expectReplies: 50)
            }
            #expect(live.broker.counters.slowConsumers.load(ordering: .relaxed) == 1)
            let frames = try await slow.readFrames()
            let close = try #require(frames.last(where: { $0.opcode == 0x8 }))
            #expect(Array(close.payload.prefix(2)) == [0x0F, 0xA1])   // 4001
            #expect(String(decoding: close.payload.dropFirst(2), as: UTF8.self) == "slow_consumer")
            await slow.tcp.close()
            await publisher.close()
        }
    }

    @Test func maxFrequencyCapsTheRateAndEndsOnTheLatestValue() async throws {
        try await withLiveServer { live in
            let client = BayeuxTestClient(port: live.port, transport: .websocket)
            try await client.start()
            _ = try await client.subscribe("/tick", ext: #"{"herald":{"maxFrequency":5}}"#)
            let start = ContinuousClock.now
            for n in 0..<100 {
                try live.broker.publish(ChannelName("/tick")!, json: String(n))
                try await Task.sleep(for: .milliseconds(15))
            }
            let elapsed = ContinuousClock.now - start
            try await Task.sleep(for: .milliseconds(400))
            let events = await client.events
            let values = events.compactMap { $0["data"]?.intValue }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            // At most 5 a second (plus the first, and the final release), never more.
            #expect(values.count <= Int(seconds * 5) + 2, "\(values.count) updates in \(seconds) s")
            #expect(values.count >= 3)
            #expect(values.last == 99)
            #expect(values == values.sorted())
            await client.stop()
        }
    }
}
