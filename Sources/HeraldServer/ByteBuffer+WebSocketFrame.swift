import NIOCore

extension ByteBuffer {
    /// Writes the header of an unmasked final frame (RFC 6455 §5.2) with `opcode` into the
    /// space in front of the readable bytes (or a new buffer if there is none), so that the
    /// frame is one buffer and one iovec. NIO's `WebSocketFrameEncoder` can put the header in
    /// front of a payload only when it owns the payload's storage uniquely, which it never does
    /// for frames passed to it, so every frame became two buffers; Herald builds its payloads
    /// with `FrameBuilder.headroom` bytes free in front instead, and does not use the encoder.
    mutating func prependWebSocketHeader(opcode: UInt8) {
        let length = readableBytes
        let headerBytes = SingleMessageFrame.headerLength(payload: length)
        if readerIndex < headerBytes {
            var framed = ByteBuffer()
            framed.reserveCapacity(headerBytes + length)
            framed.moveWriterIndex(forwardBy: headerBytes)
            framed.moveReaderIndex(forwardBy: headerBytes)
            framed.writeImmutableBuffer(self)
            self = framed
        }
        let start = readerIndex - headerBytes
        SingleMessageFrame.writeHeader(opcode: opcode, payload: length, into: &self, at: start)
        moveReaderIndex(to: start)
    }
}
