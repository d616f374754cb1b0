import NIOCore

/// Builds the outgoing JSON array `[m1,m2,…]` from encoded messages, in one buffer with room
/// in front for the WebSocket frame header so that `prependWebSocketHeader` makes header and
/// payload one buffer (one `write` per connection per flush).
enum FrameBuilder {
    /// Largest WebSocket frame header a server writes (RFC 6455 §5.2: 2 + 8 bytes).
    static let headroom = 10

    static func array(_ parts: some Sequence<ByteBuffer>, count: Int, bytes: Int, allocator: ByteBufferAllocator, headroom: Int = 0) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headroom + bytes + count + 2)
        if headroom > 0 {
            buffer.moveWriterIndex(forwardBy: headroom)
            buffer.moveReaderIndex(forwardBy: headroom)
        }
        buffer.writeInteger(UInt8(ascii: "["))
        var first = true
        for part in parts {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeImmutableBuffer(part)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
        return buffer
    }

    static func array(_ parts: [ByteBuffer], allocator: ByteBufferAllocator, headroom: Int = 0) -> ByteBuffer {
        array(parts, count: parts.count, bytes: parts.reduce(0) { $0 + $1.readableBytes }, allocator: allocator, headroom: headroom)
    }
}
