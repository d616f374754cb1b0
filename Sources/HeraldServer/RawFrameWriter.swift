import HeraldProtocol
import NIOCore

/// Writes server WebSocket frames (RFC 6455 §5.2, unmasked) as plain bytes, skipping NIO's
/// `WebSocketFrameEncoder`.
///
/// The encoder can put the frame header in front of the payload only when it owns the
/// payload's storage uniquely, which it never does for frames passed to it (the frame value
/// still holds a reference), so every frame became two buffers and two iovecs. Herald builds
/// each outgoing payload with `FrameBuilder.headroom` bytes free in front, writes the header
/// there, and sends one buffer. This handler sits first in the pipeline (next to the socket);
/// `WebSocketHandler` writes through its context, as does the upgrade's `101` response. NIO's
/// encoder is not in the pipeline at all: framing errors are answered by `WebSocketHandler`.
final class RawFrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
}

extension ByteBuffer {
    /// Writes the header of an unmasked final frame with `opcode` into the space in front of the
    /// readable bytes (or a new buffer if there is none), so the frame is one buffer.
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
