@testable import HeraldServer
import NIOCore
import Testing

@Suite struct SingleMessageFrameTests {
    /// The frame's header, parsed as a client would (RFC 6455 §5.2): payload length and offset.
    static func parse(_ frame: ByteBuffer) -> (opcode: UInt8, payload: String)? {
        let bytes = Array(frame.readableBytesView)
        guard bytes.count >= 2, bytes[1] & 0x80 == 0 else { return nil }
        var length = Int(bytes[1] & 0x7F)
        var offset = 2
        if length == 126 {
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard bytes.count == offset + length else { return nil }
        return (bytes[0], String(decoding: bytes[offset...], as: UTF8.self))
    }

    @Test(arguments: [0, 1, 100, 123, 124, 125, 126, 1000, 65533, 65534, 65535, 70000])
    func framesAroundMessagesOfEveryLength(length: Int) throws {
        let message = String(repeating: "x", count: length)
        var buffer = SingleMessageFrame.start(capacity: length, allocator: ByteBufferAllocator())
        buffer.writeString(message)
        SingleMessageFrame.finish(&buffer)
        // Readers of the message see the message alone.
        #expect(String(buffer: buffer) == message)
        let frame = try #require(SingleMessageFrame.frame(around: buffer))
        let parsed = try #require(Self.parse(frame))
        #expect(parsed.opcode == 0x81)
        #expect(parsed.payload == "[" + message + "]")
    }

    @Test func otherBuffersHaveNoFrame() {
        #expect(SingleMessageFrame.frame(around: ByteBuffer(string: #"{"channel":"/a"}"#)) == nil)
        // Bytes in front that are not this message's header.
        var consumed = ByteBuffer(string: "0123456789abcdef{}")
        consumed.moveReaderIndex(forwardBy: 16)
        #expect(SingleMessageFrame.frame(around: consumed) == nil)
        // A copy or a slice of a framed message loses the frame, and is framed by the caller.
        var buffer = SingleMessageFrame.start(capacity: 8, allocator: ByteBufferAllocator())
        buffer.writeString("{}")
        SingleMessageFrame.finish(&buffer)
        #expect(SingleMessageFrame.frame(around: buffer) != nil)
        #expect(SingleMessageFrame.frame(around: ByteBuffer(buffer: buffer)) == nil)
        #expect(SingleMessageFrame.frame(around: buffer.getSlice(at: buffer.readerIndex, length: 2)!) == nil)
        // A message extended after finishing no longer matches its header.
        var extended = buffer
        extended.writeString(" ")
        #expect(SingleMessageFrame.frame(around: extended) == nil)
    }
}
