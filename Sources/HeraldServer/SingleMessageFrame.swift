import HeraldCore
import NIOCore

/// An encoded message that carries, around its readable bytes, the WebSocket text frame that
/// sends it alone: `header [ message ]` (RFC 6455 §5.2, unmasked, final).
///
/// Most pushes are one message to one connection, and every subscriber of a publish shares the
/// same encoded buffer. With the frame already around the message, a connection whose batch
/// is that single message writes the shared buffer as it is: no frame buffer, no copy, and no
/// copy-on-write, because only the buffer's indices change. Everything else sees the message
/// alone (the readable bytes), so queues, conflation, history and the HTTP transports are
/// unaffected.
///
/// The core leaves the room for it (`DeliveryFraming`, implemented by `Framing` below) and
/// calls `finish(_:)`, which writes the bytes around the message; `frame(around:)` checks them (header first, then the closing
/// bracket) before trusting them, so any other buffer is framed by the caller as usual.
enum SingleMessageFrame {
    /// Room in front of the message: the largest server frame header (10 bytes) and `[`.
    static let headroom = 11

    /// Room behind the message: `]`.
    static let tailroom = 1

    /// The room the core leaves around each delivery for this frame.
    struct Framing: DeliveryFraming {
        var headroomBytes: Int { SingleMessageFrame.headroom }
        var tailroomBytes: Int { SingleMessageFrame.tailroom }
        func frame(_ message: inout ByteBuffer) { SingleMessageFrame.finish(&message) }
    }

    /// A buffer to write a message into, with room for the frame in front and `]` behind.
    static func start(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headroom + capacity + tailroom)
        buffer.moveWriterIndex(forwardBy: headroom)
        buffer.moveReaderIndex(forwardBy: headroom)
        return buffer
    }

    /// Writes the frame around the message written since `start` (or into `Framing`'s room).
    static func finish(_ buffer: inout ByteBuffer) {
        let payload = buffer.readableBytes + 2
        let headerBytes = headerLength(payload: payload)
        guard buffer.readerIndex >= headerBytes + 1 else { return }
        let end = buffer.writerIndex
        buffer.writeInteger(UInt8(ascii: "]"))
        buffer.moveWriterIndex(to: end)
        let bracket = buffer.readerIndex - 1
        buffer.setInteger(UInt8(ascii: "["), at: bracket)
        writeHeader(opcode: 0x1, payload: payload, into: &buffer, at: bracket - headerBytes)
    }

    /// The whole frame around `message`, if `finish(_:)` wrote one.
    static func frame(around message: ByteBuffer) -> ByteBuffer? {
        let payload = message.readableBytes + 2
        let headerBytes = headerLength(payload: payload)
        let start = message.readerIndex - 1 - headerBytes
        let end = message.writerIndex
        guard start >= 0, end < message.capacity else { return nil }
        let framed = message.withVeryUnsafeBytes { storage -> Bool in
            // The bytes in front were written before the message (reader index moved past
            // them), so they are read first; the closing bracket only if they match.
            guard storage[start] == 0x81, storage[message.readerIndex - 1] == UInt8(ascii: "[") else { return false }
            switch headerBytes {
            case 2:
                guard storage[start + 1] == UInt8(payload) else { return false }
            case 4:
                guard storage[start + 1] == 126, Int(storage[start + 2]) << 8 | Int(storage[start + 3]) == payload else { return false }
            default:
                guard storage[start + 1] == 127 else { return false }
                var length = 0
                for i in 2..<10 { length = length << 8 | Int(storage[start + i]) }
                guard length == payload else { return false }
            }
            return storage[end] == UInt8(ascii: "]")
        }
        guard framed else { return nil }
        var frame = message
        frame.moveWriterIndex(to: end + 1)
        frame.moveReaderIndex(to: start)
        return frame
    }

    /// The length of a server frame header for a payload of `payload` bytes.
    static func headerLength(payload: Int) -> Int {
        payload < 126 ? 2 : (payload <= 0xFFFF ? 4 : 10)
    }

    /// Writes an unmasked final frame's header at `start`.
    static func writeHeader(opcode: UInt8, payload: Int, into buffer: inout ByteBuffer, at start: Int) {
        buffer.setInteger(0x80 | opcode, at: start)
        switch headerLength(payload: payload) {
        case 2: buffer.setInteger(UInt8(payload), at: start + 1)
        case 4:
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(payload), at: start + 2)
        default:
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(payload), at: start + 2)
        }
    }
}
