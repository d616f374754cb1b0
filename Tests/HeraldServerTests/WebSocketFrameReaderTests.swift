import HeraldCore
import Logging
import NIOCore
import NIOEmbedded
@testable import HeraldServer
import Testing

@Suite struct WebSocketFrameReaderTests {
    /// A client frame as RFC 6455 §5.2 lays it out, masked with `mask` unless it is `nil`.
    static func frame(fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, payload: [UInt8], mask: [UInt8]? = [0x12, 0x34, 0x56, 0x78], lengthForm: Int? = nil) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv << 4 | opcode]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        switch lengthForm ?? (payload.count < 126 ? 0 : payload.count <= 0xFFFF ? 2 : 8) {
        case 0: bytes.append(maskBit | UInt8(payload.count))
        case 2:
            bytes.append(maskBit | 126)
            bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            bytes.append(maskBit | 127)
            bytes += (0..<8).map { UInt8((UInt64(payload.count) >> (56 - 8 * UInt64($0))) & 0xFF) }
        }
        guard let mask else { return bytes + payload }
        return bytes + mask + payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
    }

    /// Feeds `bytes` in pieces of `chunk` bytes and collects every message.
    static func read(_ bytes: [UInt8], chunk: Int = .max, maxMessageBytes: Int = 1 << 20, maxFragments: Int = 1024) throws(WebSocketFrameReader.Violation) -> [String] {
        var reader = WebSocketFrameReader(maxMessageBytes: maxMessageBytes, maxFragments: maxFragments)
        var out: [String] = []
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + min(chunk, bytes.count))
            reader.append(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
            while let message = try reader.next(allocator: ByteBufferAllocator()) {
                switch message {
                case .text(let b): out.append("text:" + String(buffer: b))
                case .binary: out.append("binary")
                case .ping(let b): out.append("ping:" + String(buffer: b))
                case .pong: out.append("pong")
                case .close(let b): out.append("close:\(b.readableBytes)")
                }
            }
        } while offset < bytes.count
        return out
    }

    static func violation(_ bytes: [UInt8], maxMessageBytes: Int = 1 << 20, maxFragments: Int = 1024) -> WebSocketFrameReader.Violation? {
        do {
            _ = try read(bytes, maxMessageBytes: maxMessageBytes, maxFragments: maxFragments)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70000])
    func payloadsOfEveryLengthFormAreUnmasked(length: Int) throws {
        let text = String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
        let bytes = Self.frame(opcode: 0x1, payload: Array(text.utf8), mask: [0xA1, 0x00, 0xFF, 0x5C])
        #expect(try Self.read(bytes) == ["text:" + text])
    }

    @Test func framesSplitAtEveryByteAreReassembled() throws {
        let stream = Self.frame(opcode: 0x1, payload: Array(#"[{"channel":"/a"}]"#.utf8))
            + Self.frame(fin: false, opcode: 0x1, payload: Array("[1,".utf8))
            + Self.frame(opcode: 0x9, payload: Array("hi".utf8))
            + Self.frame(fin: false, opcode: 0x0, payload: Array("2,".utf8))
            + Self.frame(opcode: 0x0, payload: Array("3]".utf8))
            + Self.frame(opcode: 0xA, payload: [])
            + Self.frame(opcode: 0x2, payload: [1, 2, 3])
            + Self.frame(opcode: 0x8, payload: [0x03, 0xE8])
        let expected = [#"text:[{"channel":"/a"}]"#, "ping:hi", "text:[1,2,3]", "pong", "binary", "close:2"]
        for chunk in [1, 2, 3, 5, 7, 64, Int.max] {
            #expect(try Self.read(stream, chunk: chunk) == expected, "chunk \(chunk)")
        }
    }

    @Test func protocolViolationsAreNamed() {
        let text = Array("x".utf8)
        let cases: [(String, [UInt8], WebSocketFrameReader.Violation)] = [
            ("unmasked", Self.frame(opcode: 0x1, payload: text, mask: nil), .protocolError("unmasked client frame")),
            ("reserved bit", Self.frame(rsv: 0x4, opcode: 0x1, payload: text), .protocolError("reserved bits set")),
            ("unknown data opcode", Self.frame(opcode: 0x3, payload: text), .protocolError("unknown opcode 3")),
            ("unknown control opcode", Self.frame(opcode: 0xB, payload: text), .protocolError("unknown opcode 11")),
            ("fragmented ping", Self.frame(fin: false, opcode: 0x9, payload: text), .protocolError("fragmented control frame")),
            ("long ping", Self.frame(opcode: 0x9, payload: [UInt8](repeating: 0, count: 126)), .protocolError("control frame over 125 bytes")),
            ("lone continuation", Self.frame(opcode: 0x0, payload: text), .protocolError("continuation without a message")),
            ("text inside fragments", Self.frame(fin: false, opcode: 0x1, payload: text) + Self.frame(opcode: 0x1, payload: text), .protocolError("new message inside a fragmented one")),
        ]
        for (name, bytes, expected) in cases {
            #expect(Self.violation(bytes) == expected, "\(name)")
        }
    }

    @Test func oversizedFramesAreRefusedFromTheirHeader() {
        // Only the header: the reader must not wait for (or buffer) the payload.
        let header = Array(Self.frame(opcode: 0x1, payload: [UInt8](repeating: 0, count: 2000)).prefix(8))
        #expect(Self.violation(header, maxMessageBytes: 1000) == .tooLarge)
        var huge: [UInt8] = [0x81, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(Self.violation(huge) == .tooLarge)
        huge[2] = 0x80
        #expect(Self.violation(huge) == .protocolError("invalid payload length"))
        // A frame of exactly the limit is fine.
        #expect(Self.violation(Self.frame(opcode: 0x1, payload: [UInt8](repeating: 32, count: 1000)), maxMessageBytes: 1000) == nil)
    }

    @Test func fragmentedMessagesAreBounded() {
        let piece = [UInt8](repeating: 32, count: 400)
        let three = Self.frame(fin: false, opcode: 0x1, payload: piece) + Self.frame(fin: false, opcode: 0x0, payload: piece) + Self.frame(opcode: 0x0, payload: piece)
        #expect(Self.violation(three, maxMessageBytes: 1000) == .tooLarge)
        #expect(Self.violation(three, maxMessageBytes: 1200) == nil)
        #expect(Self.violation(three, maxMessageBytes: 1200, maxFragments: 2) == .tooManyFragments)
    }

    @Test func unmaskingMatchesTheBytewiseDefinition() {
        let key: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
        let keyWord = key.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        for length in 0..<40 {
            let source = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            var target = [UInt8](repeating: 0, count: length)
            source.withUnsafeBytes { s in
                target.withUnsafeMutableBytes { t in WebSocketFrameReader.unmask(s, key: keyWord, into: t) }
            }
            #expect(target == source.enumerated().map { $0.element ^ key[$0.offset & 3] }, "length \(length)")
        }
    }
}

@Suite struct WebSocketHandlerLifetimeTests {
    /// The handler and its `WebSocketConnection` refer to each other; closing the channel must
    /// free both (a cycle here leaked a few hundred bytes per WebSocket ever opened).
    @Test func handlerAndConnectionAreFreedWhenTheChannelCloses() throws {
        let channel = EmbeddedChannel()
        weak var handler: WebSocketHandler?
        weak var connection: WebSocketConnection?
        do {
            let traffic = TrafficCounters()
            let broker = Broker()
            let created = WebSocketHandler(
                broker: broker,
                configuration: ServerConfiguration(),
                scheduler: FlushScheduler(eventLoop: channel.eventLoop, traffic: traffic, broker: broker),
                keepalive: ConnectionTicker(eventLoop: channel.eventLoop, interval: .seconds(30)),
                traffic: traffic,
                handshakes: HandshakeLimiter(configuration: ServerConfiguration()),
                clientAddress: nil,
                logger: Logger(label: "test")
            )
            try channel.pipeline.syncOperations.addHandler(created)
            handler = created
            connection = created.connection
        }
        #expect(handler != nil && connection != nil)
        _ = try channel.finish()
        #expect(handler == nil)
        #expect(connection == nil)
    }
}
