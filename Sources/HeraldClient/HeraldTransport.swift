public import Logging
public import NIOCore

/// Opens connections to a Bayeux server for a ``HeraldClient``.
///
/// The client brings its own for URLs (WebSocket, then long-polling). An embedding service
/// gets one from `Broker.inProcessTransport()` (in `HeraldServer`), which reaches the broker
/// without a socket. Other implementations can carry Bayeux batches over anything that keeps
/// their order.
public protocol HeraldTransport: Sendable {
    /// Opens one connection. Throws ``HeraldClientError`` (`.unreachable`, `.invalidURL`) if it
    /// cannot.
    func connect(logger: Logger) async throws -> any HeraldTransportConnection
}

/// One open connection: batches out, batches in.
public protocol HeraldTransportConnection: Sendable {
    /// The Bayeux `connectionType` this connection is (`websocket`, `long-polling`, …).
    var connectionType: String { get }
    /// The kind, for ``HeraldConnectionState/connected(transport:)``; nil for others.
    var transport: HeraldClientConfiguration.Transport? { get }
    /// Batches from the server, each a JSON array of messages (or one message object), in the
    /// order the server sent them. It finishes when the connection closes, throwing if it
    /// failed.
    var inbound: AsyncThrowingStream<ByteBuffer, any Error> { get }
    /// Sends a batch: a JSON array of messages. `isConnect` marks a batch that is exactly one
    /// `/meta/connect`, which the server may hold for its timeout; request/response
    /// transports send it beside, not before, other batches.
    func send(_ batch: ByteBuffer, isConnect: Bool) async throws
    /// Closes the connection; `inbound` finishes.
    func close() async
}
