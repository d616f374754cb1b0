public import HeraldProtocol
public import NIOCore

/// A message about to be delivered to subscribers.
public struct Delivery: Sendable {
    public var channel: ChannelName
    /// Raw JSON.
    public var data: ByteBuffer
    /// Server-side `ext` for the delivery, e.g. offsets.
    public var ext: JSONObject?

    public init(channel: ChannelName, data: ByteBuffer, ext: JSONObject? = nil) {
        self.channel = channel
        self.data = data
        self.ext = ext
    }

    /// `{"channel":…,"data":…[,"ext":…]}`: no `id`, no `clientId` (bayeux-notes rule 4).
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        encoded(allocator: allocator, framing: nil)
    }

    /// The encoded message, with the room `framing` asks for around it, filled by it: every
    /// subscriber shares this one buffer, and a transport can send it as it is.
    package func encoded(allocator: ByteBufferAllocator, framing: (any DeliveryFraming)?) -> ByteBuffer {
        // Channel names are printable ASCII without quotes or backslashes (`ChannelName`):
        // nothing to escape.
        let name = channel.rawValue
        let headBytes = PieceWriter.count { Self.writeHead(&$0, name: name, data: data) }
        let headroom = framing?.headroomBytes ?? 0
        // The ext, when there is one, is small: Herald's offset, epoch and retained flag take
        // about 80 bytes (a publisher's own ext may take more; the buffer then grows once).
        let capacity = headroom + headBytes + (ext == nil ? 0 : 96) + 1 + (framing?.tailroomBytes ?? 0)
        var buffer = allocator.buffer(capacity: capacity)
        if headroom > 0 {
            buffer.moveWriterIndex(forwardBy: headroom)
            buffer.moveReaderIndex(forwardBy: headroom)
        }
        buffer.writePieces(count: headBytes) { Self.writeHead(&$0, name: name, data: data) }
        if let ext {
            buffer.writeStaticString(",\"ext\":")
            buffer.writeJSON(ext)
        }
        buffer.writeStaticString("}")
        framing?.frame(&buffer)
        return buffer
    }

    /// `{"channel":"NAME","data":DATA`
    private static func writeHead(_ out: inout PieceWriter, name: String, data: ByteBuffer) {
        out.append("{\"channel\":\"")
        out.append(name)
        out.append("\",\"data\":")
        out.append(data)
    }
}
