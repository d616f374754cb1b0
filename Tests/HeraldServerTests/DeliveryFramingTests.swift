import HeraldCore
import HeraldProtocol
@testable import HeraldServer
import NIOCore
import Synchronization
import Testing

/// The path production takes: a broker that a `HeraldServer` serves encodes each delivery with
/// the room for its WebSocket frame, so that a subscriber whose batch is that one message
/// writes the shared buffer as it is. If the room or the framing broke, the transport would
/// fall back to copying and every wire test would still pass: this checks the shared buffer.
@Suite struct DeliveryFramingTests {
    /// A connection that keeps what it drains, as buffers.
    final class Collector: BayeuxConnection {
        let drained = Mutex<[ByteBuffer]>([])
        func messagesAvailable(_ session: Session) {
            var taken: [ByteBuffer] = []
            session.drain(for: self) { queue, _, _ in taken = Array(queue) }
            drained.withLock { $0 += taken }
        }
        func sessionClosed(_ session: Session, reason: CloseReason) {}
        func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer]) {}
    }

    func subscribed(_ broker: Broker) throws -> Collector {
        let connection = Collector()
        func send(_ json: String) throws -> [JSONValue] {
            let result = broker.process(try MessageCodec.decodeBatch(ByteBuffer(string: json)), type: .websocket, connection: connection)
            return try result.replies.map { try JSONParser.parse(String(buffer: $0)) }
        }
        let handshake = try send(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]"#)
        let id = try #require(handshake.first?["clientId"]?.stringValue)
        _ = try send(#"[{"channel":"/meta/connect","clientId":"\#(id)","connectionType":"websocket"}]"#)
        let subscribe = try send(#"[{"channel":"/meta/subscribe","clientId":"\#(id)","subscription":"/stocks/*"}]"#)
        #expect(subscribe.first?["successful"] == .bool(true))
        return connection
    }

    @Test func aServedBrokerEncodesDeliveriesInsideTheirFrame() throws {
        let broker = Broker()
        _ = HeraldServer(broker: broker)
        let connection = try subscribed(broker)
        try broker.publish(ChannelName("/stocks/AAPL")!, json: #"{"px":189.5}"#)
        let message = try #require(connection.drained.withLock { $0.first })
        #expect(String(buffer: message) == #"{"channel":"/stocks/AAPL","data":{"px":189.5}}"#)
        let frame = try #require(SingleMessageFrame.frame(around: message))
        let parsed = try #require(SingleMessageFrameTests.parse(frame))
        #expect(parsed.opcode == 0x81)
        #expect(parsed.payload == "[" + String(buffer: message) + "]")
    }

    @Test func aBrokerWithoutATransportLeavesNoRoom() throws {
        let broker = Broker()
        let connection = try subscribed(broker)
        try broker.publish(ChannelName("/stocks/AAPL")!, json: #"{"px":189.5}"#)
        let message = try #require(connection.drained.withLock { $0.first })
        #expect(message.readerIndex == 0)
        #expect(SingleMessageFrame.frame(around: message) == nil)
    }
}
