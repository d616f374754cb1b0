public import HeraldClient
public import HeraldCore
import HeraldProtocol
public import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A ``HeraldTransport`` to a broker in the same process: an embedding service publishes and
/// subscribes through the same `HeraldClient` API as a remote client, without a socket.
///
/// ```swift
/// let client = HeraldClient(transport: InProcessTransport(broker: broker), logger: logger)
/// ```
///
/// The client's batches go to `Broker.process` as they would from a WebSocket (one parse of
/// the small envelope; `data` is forwarded as the bytes it is). Deliveries come back as the
/// broker encoded them, once for all subscribers, without a copy per connection. Sessions are
/// the broker's like any other: they show in the admin API, and `/service/**` handlers
/// registered in Swift answer them.
public struct InProcessTransport: HeraldTransport {
    let broker: Broker

    public init(broker: Broker) {
        self.broker = broker
    }

    /// A new connection to the broker: no socket, nothing that can fail.
    public func connect(logger: Logger) async throws -> any HeraldTransportConnection {
        InProcessConnection(broker: broker)
    }
}

/// One in-process connection: a push connection (as a WebSocket) whose frames are the
/// inbound stream's elements.
final class InProcessConnection: HeraldTransportConnection, BayeuxConnection {
    let connectionType = "websocket"
    var transport: HeraldClientConfiguration.Transport? { nil }
    let inbound: AsyncThrowingStream<ByteBuffer, any Error>
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let broker: Broker
    private let number = ConnectionNumbers.take()
    /// The session a connect bound to this connection.
    private let bound = Mutex<Session?>(nil)
    private let allocator = ByteBufferAllocator()

    init(broker: Broker) {
        self.broker = broker
        (inbound, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
    }

    func send(_ batch: ByteBuffer, isConnect: Bool) async throws {
        let messages = try MessageCodec.decodeBatch(batch)
        let result = broker.process(messages, type: .websocket, connection: self, proof: ClientProof(connection: number))
        if let session = result.connectedSession {
            let previous = bound.withLock { bound in
                defer { bound = session }
                return bound
            }
            if let previous, previous !== session { broker.detach(self, from: previous) }
        }
        if let held = result.held {
            let broker = self.broker
            Task {
                try? await Task.sleep(for: .nanoseconds(held.timeout.nanoseconds))
                broker.timeoutHeldConnect(held)
            }
        }
        let replies = result.replies + result.events
        if let gate = result.commitGate {
            gate.whenCommitted { [continuation, allocator] replacements in
                var released = replies
                for (index, replacement) in replacements where index < released.count { released[index] = replacement }
                continuation.yield(FrameBuilder.array(released, allocator: allocator))
            }
        } else if !replies.isEmpty {
            continuation.yield(FrameBuilder.array(replies, allocator: allocator))
        }
        if let session = result.connectedSession { messagesAvailable(session) }
    }

    func close() async {
        if let session = bound.withLock({ $0 }) { broker.detach(self, from: session) }
        continuation.finish()
    }

    // MARK: BayeuxConnection

    func messagesAvailable(_ session: Session) {
        let (continuation, allocator) = (self.continuation, self.allocator)
        session.drain(for: self) { queue, bytes, _ in
            // Under the session's lock, so that concurrent drains keep their order.
            continuation.yield(FrameBuilder.array(queue, count: queue.count, bytes: bytes, allocator: allocator))
        }
    }

    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer]) {
        continuation.yield(FrameBuilder.array([reply] + events, allocator: allocator))
    }

    func sessionClosed(_ session: Session, reason: CloseReason) {
        continuation.finish(throwing: HeraldClientError(.connectionClosed, detail: "the broker closed the session: \(reason.name)"))
    }
}
