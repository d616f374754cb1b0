import Foundation
import NIOCore
import Synchronization

/// Messages a subscription's stream holds that its consumer has not taken yet.
final class BufferedMessages: Sendable {
    let count = Atomic<Int>(0)
}

/// The messages of one subscription, as an `AsyncSequence` of ``HeraldEvent``s: messages, and
/// a ``HeraldEvent/gap(_:)`` where the client could not resume without losing some.
///
/// The sequence ends when ``unsubscribe()`` is called, when the task iterating it is
/// cancelled (which unsubscribes), or when the client closes; it throws if the client gave up
/// or the server withdrew the subscription. Iterate it from one task.
public struct HeraldSubscription<Payload: Sendable>: AsyncSequence, Sendable {
    public typealias Element = HeraldEvent<Payload>

    /// The pattern subscribed to.
    public let pattern: String
    let id: Int
    let core: ClientCore
    let events: AsyncThrowingStream<HeraldEvent<ByteBuffer>, any Error>
    let buffered: BufferedMessages
    let decode: @Sendable (ByteBuffer) throws -> Payload

    /// Unsubscribes; the sequence ends.
    public func unsubscribe() async {
        await core.remove(id, unsubscribe: true)
    }

    /// Only the messages, for callers that treat a gap like any other lost message: a gap
    /// is logged by the client either way.
    public var messages: some AsyncSequence<HeraldMessage<Payload>, any Error> {
        compactMap { $0.message }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<HeraldEvent<ByteBuffer>, any Error>.AsyncIterator
        let buffered: BufferedMessages
        let decode: @Sendable (ByteBuffer) throws -> Payload

        public mutating func next() async throws -> HeraldEvent<Payload>? {
            switch try await base.next() {
            case nil: return nil
            case .gap(let gap)?: return .gap(gap)
            case .message(let raw)?:
                buffered.count.subtract(1, ordering: .relaxed)
                let data: Payload
                do {
                    data = try decode(raw.data)
                } catch {
                    throw HeraldClientError(.decodingFailed, channel: raw.channel, detail: "\(error)")
                }
                return .message(HeraldMessage(channel: raw.channel, data: data, ext: raw.ext, position: raw.position, isRetained: raw.isRetained))
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: events.makeAsyncIterator(), buffered: buffered, decode: decode)
    }
}

extension HeraldSubscription where Payload == ByteBuffer {
    /// Raw subscriptions skip the decode step.
    static func raw(pattern: String, id: Int, core: ClientCore, events: AsyncThrowingStream<HeraldEvent<ByteBuffer>, any Error>, buffered: BufferedMessages) -> Self {
        Self(pattern: pattern, id: id, core: core, events: events, buffered: buffered, decode: { $0 })
    }
}
