import HeraldProtocol
import NIOCore

/// One message the client sends, encoded, with the id its reply will carry.
struct OutgoingMessage: Sendable {
    let id: Int
    let buffer: ByteBuffer

    /// One message object: `channel`, `id`, then `members` in order.
    init(channel: String, id: Int, _ members: [(String, JSONValue)]) {
        var object = JSONObject(capacity: members.count + 2)
        object["channel"] = .string(channel)
        object["id"] = .int(id)
        for (key, value) in members { object[key] = value }
        var buffer = ByteBuffer()
        buffer.writeJSON(object)
        self.id = id
        self.buffer = buffer
    }

    /// A JSON array of already-encoded message objects.
    static func batch(_ messages: [ByteBuffer]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(messages.reduce(2) { $0 + $1.readableBytes + 1 })
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, message) in messages.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeImmutableBuffer(message)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
        return buffer
    }
}

extension JSONObject {
    /// The `ext.herald` object of a server message.
    var herald: JSONObject? { self["herald"]?.objectValue }
}
