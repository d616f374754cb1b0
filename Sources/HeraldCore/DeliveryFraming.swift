package import NIOCore

/// Room a transport wants around every encoded delivery, and how it fills it.
///
/// A publish is encoded once and the same buffer is queued for every subscriber. When a
/// transport's unit of output is that one message wrapped in a few bytes (a WebSocket frame
/// header and `[`…`]`), encoding the message with the room already there lets the transport
/// send the shared buffer as it is, with no copy. The core reserves the room and calls
/// `frame(_:)`; it knows nothing of what goes there. Everyone else sees only the readable
/// bytes, which are the message alone.
package protocol DeliveryFraming: Sendable {
    /// Bytes to leave free in front of the message.
    var headroomBytes: Int { get }
    /// Bytes to leave free after it.
    var tailroomBytes: Int { get }
    /// Fills the room around the readable bytes (the encoded message), leaving them unchanged.
    func frame(_ message: inout ByteBuffer)
}
