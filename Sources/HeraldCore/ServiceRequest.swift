public import HeraldProtocol
public import NIOCore

/// A message published to a `/service/**` channel. Such messages are never broadcast
/// (bayeux-notes rule 12); a handler registered with `Broker.registerService` gets them.
public struct ServiceRequest: Sendable {
    public var channel: ChannelName
    /// Raw JSON.
    public var data: ByteBuffer
    public var session: Session?
    public var id: JSONValue?
}

/// Handles `/service/**` requests. A returned value is delivered privately to the sender on
/// the same channel, as a normal event (no `id`, so aiocometd does not take it for the
/// publish acknowledgement).
public typealias ServiceHandler = @Sendable (ServiceRequest) -> JSONValue?
