import NIOCore

/// Reads the client side of a WebSocket (RFC 6455 §5) from the connection's bytes: frames are
/// parsed where they lie, unmasked in one pass into a buffer of their own, and fragmented
/// messages are put together, so `WebSocketHandler` gets whole messages straight from the
/// socket's reads.
///
/// This replaces NIO's `WebSocketFrameDecoder` and `NIOWebSocketFrameAggregator`. Between
/// them they cost a `ByteToMessageHandler` pass, a boxed `WebSocketFrame` per frame, a second
/// pipeline hop, and a byte-at-a-time unmasking copy: about a tenth of the server's time when
/// every publish is one small frame (README, "Performance": the channels scenario).
///
/// Limits, checked before a payload is buffered:
/// - a frame or a reassembled message over `maxMessageBytes` is `.tooLarge` (close 1009);
/// - more than `maxFragments` frames in one message is `.tooManyFragments` (close 1009);
/// - unmasked client frames, reserved bits (no extension is negotiated), unknown opcodes,
///   fragmented or oversized control frames, a continuation with nothing to continue and a new
///   data frame inside a fragmented message are `.protocolError` (close 1002).
struct WebSocketFrameReader {
    enum Message {
        case text(ByteBuffer)
        case binary
        case ping(ByteBuffer)
        case pong
        case close(ByteBuffer)
    }

    enum Violation: Error, Equatable {
        /// RFC 6455 §7.4.1 code 1009.
        case tooLarge
        /// RFC 6455 §7.4.1 code 1009 too, with its own reason.
        case tooManyFragments
        /// RFC 6455 §7.4.1 code 1002.
        case protocolError(String)
    }

    let maxMessageBytes: Int
    let maxFragments: Int
    /// Bytes read but not yet parsed: the tail of a frame split across reads. `nil` when every
    /// byte read so far was consumed, so that the next read is parsed without a copy.
    private var pending: ByteBuffer?
    /// The message being reassembled from fragments, with its opcode and frame count.
    private var fragments: ByteBuffer?
    private var fragmentedOpcode: UInt8 = 0
    private var fragmentCount = 0

    init(maxMessageBytes: Int, maxFragments: Int = 1024) {
        self.maxMessageBytes = maxMessageBytes
        self.maxFragments = maxFragments
    }

    /// Adds bytes read from the socket. Call `next` until it returns `nil` afterwards.
    mutating func append(_ bytes: ByteBuffer) {
        if pending == nil {
            pending = bytes
        } else {
            pending!.writeImmutableBuffer(bytes)
        }
    }

    /// The next complete message, or `nil` when more bytes are needed.
    mutating func next(allocator: ByteBufferAllocator) throws(Violation) -> Message? {
        while pending != nil {
            guard let message = try nextFrame(allocator: allocator) else { return nil }
            if let message { return message }
        }
        return nil
    }

    /// Parses one frame. Returns `nil` if it is not all there yet, `.some(nil)` for a
    /// fragment that does not end its message.
    private mutating func nextFrame(allocator: ByteBufferAllocator) throws(Violation) -> Message?? {
        guard let buffer = pending, let header = try Self.header(of: buffer, maxPayload: maxMessageBytes) else { return nil }
        guard buffer.readableBytes >= header.length + header.payload else { return nil }
        let start = header.length
        let opcode = header.opcode

        if opcode >= 0x8 {
            // Control frames may come between the fragments of a message (§5.4).
            guard header.fin else { throw .protocolError("fragmented control frame") }
            guard header.payload <= 125 else { throw .protocolError("control frame over 125 bytes") }
            var payload = allocator.buffer(capacity: header.payload)
            unmask(from: start, count: header.payload, key: header.mask, into: &payload)
            consume(header)
            switch opcode {
            case 0x8: return .some(.close(payload))
            case 0x9: return .some(.ping(payload))
            case 0xA: return .some(.pong)
            default: throw .protocolError("unknown opcode \(opcode)")
            }
        }

        guard opcode <= 0x2 else { throw .protocolError("unknown opcode \(opcode)") }
        if opcode == 0x0 {
            guard fragments != nil else { throw .protocolError("continuation without a message") }
            fragmentCount += 1
            guard fragmentCount <= maxFragments else { throw .tooManyFragments }
            guard fragments!.readableBytes + header.payload <= maxMessageBytes else { throw .tooLarge }
            unmask(from: start, count: header.payload, key: header.mask, into: &fragments!)
            consume(header)
            guard header.fin else { return .some(nil) }
            let message = fragments!
            fragments = nil
            return .some(fragmentedOpcode == 0x1 ? .text(message) : .binary)
        }
        guard fragments == nil else { throw .protocolError("new message inside a fragmented one") }
        if header.fin {
            var payload = allocator.buffer(capacity: header.payload)
            unmask(from: start, count: header.payload, key: header.mask, into: &payload)
            consume(header)
            return .some(opcode == 0x1 ? .text(payload) : .binary)
        }
        var first = allocator.buffer(capacity: header.payload)
        unmask(from: start, count: header.payload, key: header.mask, into: &first)
        consume(header)
        fragments = first
        fragmentedOpcode = opcode
        fragmentCount = 1
        return .some(nil)
    }

    private mutating func consume(_ header: Header) {
        pending!.moveReaderIndex(forwardBy: header.length + header.payload)
        if pending!.readableBytes == 0 { pending = nil }
    }

    /// Appends `count` payload bytes from `pending`, `start` bytes past its reader index,
    /// unmasked, to `output`.
    private func unmask(from start: Int, count: Int, key: UInt32, into output: inout ByteBuffer) {
        guard count > 0 else { return }
        pending!.withUnsafeReadableBytes { all in
            let source = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
                Self.unmask(source, key: key, into: target)
                return count
            }
        }
    }

    /// XORs `source` with the 4-byte masking key (RFC 6455 §5.3) into `target`, eight bytes
    /// at a time. `key` holds the key's bytes in wire order, as loaded from memory.
    static func unmask(_ source: UnsafeRawBufferPointer, key: UInt32, into target: UnsafeMutableRawBufferPointer) {
        let count = source.count
        let wide = UInt64(key) | UInt64(key) << 32
        var i = 0
        while i + 8 <= count {
            let word = source.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ wide
            target.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        withUnsafeBytes(of: key) { keyBytes in
            while i < count {
                target[i] = source[i] ^ keyBytes[i & 3]
                i += 1
            }
        }
    }

    struct Header {
        var fin: Bool
        var opcode: UInt8
        /// Header bytes, mask included.
        var length: Int
        var payload: Int
        var mask: UInt32
    }

    /// The header at the start of `buffer`'s readable bytes, or `nil` if it is not all there.
    /// Checks everything that can be checked before the payload arrives.
    static func header(of buffer: ByteBuffer, maxPayload: Int) throws(Violation) -> Header? {
        let available = buffer.readableBytes
        guard available >= 2 else { return nil }
        let index = buffer.readerIndex
        let first = buffer.getInteger(at: index, as: UInt8.self)!
        let second = buffer.getInteger(at: index + 1, as: UInt8.self)!
        guard first & 0x70 == 0 else { throw .protocolError("reserved bits set") }
        guard second & 0x80 != 0 else { throw .protocolError("unmasked client frame") }
        var length = 2
        var payload = Int(second & 0x7F)
        if payload == 126 {
            guard available >= 4 else { return nil }
            payload = Int(buffer.getInteger(at: index + 2, as: UInt16.self)!)
            length = 4
        } else if payload == 127 {
            guard available >= 10 else { return nil }
            let wide = buffer.getInteger(at: index + 2, as: UInt64.self)!
            guard wide >> 63 == 0 else { throw .protocolError("invalid payload length") }
            guard wide <= UInt64(maxPayload) else { throw .tooLarge }
            payload = Int(wide)
            length = 10
        }
        guard payload <= maxPayload else { throw .tooLarge }
        guard available >= length + 4 else { return nil }
        let mask = buffer.getInteger(at: index + length, endianness: .host, as: UInt32.self)!
        return Header(fin: first & 0x80 != 0, opcode: first & 0x0F, length: length + 4, payload: payload, mask: mask)
    }
}
