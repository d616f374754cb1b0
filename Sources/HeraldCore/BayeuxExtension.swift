import HeraldProtocol
import NIOCore

/// A server-side Bayeux extension, in the manner of Faye's and CometD's (bayeux-notes §4.1).
///
/// Incoming hooks run in registration order on every message before the broker acts on it;
/// outgoing hooks run in registration order on every reply. Delivery hooks run **once per
/// publish**, before the message is encoded for all subscribers, so they cannot vary per
/// subscriber: that is what keeps fan-out at one encoding per publish.
public protocol BayeuxExtension: Sendable {
    func incoming(_ message: inout BayeuxMessage, session: Session?) -> ExtensionDecision
    func outgoingReply(_ reply: inout JSONObject, request: BayeuxMessage, session: Session?)
    func outgoingDelivery(_ delivery: inout Delivery)
}

extension BayeuxExtension {
    public func incoming(_ message: inout BayeuxMessage, session: Session?) -> ExtensionDecision { .continue }
    public func outgoingReply(_ reply: inout JSONObject, request: BayeuxMessage, session: Session?) {}
    public func outgoingDelivery(_ delivery: inout Delivery) {}
}

/// What an incoming extension decided.
public enum ExtensionDecision: Sendable {
    /// Go on processing.
    case `continue`
    /// Answer `successful: false` with this error, and do nothing else.
    case reject(BayeuxError)
    /// Drop the message silently: no reply at all.
    case drop
}

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
        // With its WebSocket frame around it (`SingleMessageFrame`): a connection whose batch
        // is this message alone sends the shared buffer as it is.
        var buffer = SingleMessageFrame.start(capacity: 24 + channel.rawValue.utf8.count + data.readableBytes, allocator: allocator)
        // Channel names are printable ASCII without quotes or backslashes (`ChannelName`):
        // nothing to escape.
        let name = channel.rawValue
        buffer.writePieces(count: 21 + name.utf8.count + data.readableBytes) { out in
            out.append("{\"channel\":\"")
            out.append(name)
            out.append("\",\"data\":")
            out.append(data)
        }
        if let ext {
            buffer.writeStaticString(",\"ext\":")
            buffer.writeJSON(ext)
        }
        buffer.writeStaticString("}")
        SingleMessageFrame.finish(&buffer)
        return buffer
    }
}
