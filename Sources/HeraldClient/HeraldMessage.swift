public import HeraldProtocol
import NIOCore

/// A message's place in its channel's history: Herald's `ext.herald` `(epoch, offset)`.
public struct HeraldPosition: Hashable, Sendable, CustomStringConvertible {
    /// The channel log's epoch (16 hex characters); a new epoch means the old history is gone.
    public var epoch: String
    /// The message's offset in the channel, from 1.
    public var offset: Int

    public init(epoch: String, offset: Int) {
        self.epoch = epoch
        self.offset = offset
    }

    public var description: String { "\(offset)@\(epoch)" }
}

/// One message received on a subscription.
public struct HeraldMessage<Payload: Sendable>: Sendable {
    /// The channel it was published to (never a wildcard).
    public var channel: String
    /// The publisher's `data`: decoded, or the raw JSON bytes for `HeraldMessage<ByteBuffer>`.
    public var data: Payload
    /// The message's `ext`, as the server sent it.
    public var ext: JSONObject?
    /// Its position in the channel's history, on channels that keep one.
    public var position: HeraldPosition?
    /// Whether it is the channel's retained (last) value, sent on subscribe, rather than a
    /// live or replayed message.
    public var isRetained: Bool
}

/// A gap: messages on `channel` that the subscription will never see. Either the server said
/// the position to resume from is gone (its history moved on, or the channel's epoch
/// changed), or the consumer fell behind by more than
/// ``HeraldClientConfiguration/maximumBufferedMessages`` and the client dropped some
/// (``droppedMessages``).
public struct HeraldGap: Sendable, CustomStringConvertible {
    /// The concrete channel whose messages were lost (for dropped messages: the channel of
    /// the first one dropped).
    public var channel: String
    /// The last position the subscription delivered on that channel, if it had one.
    public var lastDelivered: HeraldPosition?
    /// The server's refusal: `409:…:Epoch changed`, `410:…:Replay position expired` or
    /// `410:…:Replay position unknown`; empty when the client dropped messages itself.
    public var bayeuxError: String
    /// The channel's current epoch, oldest and latest offsets, where the server said them.
    public var epoch: String?
    /// The oldest offset the server still keeps on the channel.
    public var oldestOffset: Int?
    /// The channel's latest offset.
    public var latestOffset: Int?

    /// How many messages the client dropped because the consumer fell behind; nil for a gap
    /// the server reported.
    public var droppedMessages: Int?

    public var description: String {
        if let droppedMessages {
            return "gap on \(channel) after \(lastDelivered.map(\.description) ?? "the start"): \(droppedMessages) messages dropped, the consumer fell behind"
        }
        return "gap on \(channel) after \(lastDelivered.map(\.description) ?? "the start"): \(bayeuxError)"
    }
}

/// What a subscription yields: a message, or a gap before the messages that follow it.
public enum HeraldEvent<Payload: Sendable>: Sendable {
    case message(HeraldMessage<Payload>)
    case gap(HeraldGap)

    /// The message, if this event is one.
    public var message: HeraldMessage<Payload>? {
        if case .message(let message) = self { return message }
        return nil
    }
}

/// Where a new subscription starts (Herald's replay extension, `Protocol/PROTOCOL.md` §11.5).
public enum HeraldReplay: Sendable, Hashable {
    /// Only messages published from now on: no retained value, no history (`-1`).
    case newOnly
    /// Everything still in the channel's history, oldest first, then live (`-2`).
    case all
    /// Every message after this offset (0: from the first), then live; with an epoch, the
    /// server refuses the position if the channel's history has been replaced since.
    case after(offset: Int, epoch: String? = nil)

    var json: JSONValue {
        switch self {
        case .newOnly: .int(-1)
        case .all: .int(-2)
        case .after(let offset, nil): .int(offset)
        case .after(let offset, let epoch?): .object(JSONObject([("offset", .int(offset)), ("epoch", .string(epoch))]))
        }
    }
}

/// The client's connection, as ``HeraldClient/connectionStates`` reports it.
public enum HeraldConnectionState: Sendable, Hashable {
    /// Opening the first connection.
    case connecting
    /// Handshaken: subscriptions are (re)established and messages flow.
    case connected(transport: HeraldClientConfiguration.Transport?)
    /// The connection was lost; this is the `attempt`-th try to get it back.
    case reconnecting(attempt: Int)
    /// The client stopped: closed by the caller, or it gave up (the reason says why).
    case closed(reason: String?)
}
