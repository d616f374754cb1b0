import HeraldCore
import HeraldProtocol
import NIOCore
import Synchronization

/// A clock the test moves by hand.
final class ManualClock: BrokerClock {
    let now = Atomic<UInt64>(1_000_000_000)
    let wall = Atomic<Int64>(1_700_000_000_000)
    func nowNanoseconds() -> UInt64 { now.load(ordering: .relaxed) }
    func nowMillisecondsSince1970() -> Int64 { wall.load(ordering: .relaxed) }
    func advance(milliseconds: Int) {
        now.add(UInt64(milliseconds) * 1_000_000, ordering: .relaxed)
        wall.add(Int64(milliseconds), ordering: .relaxed)
    }
}

/// An in-memory connection: what a transport would have written, as parsed JSON.
final class MemoryConnection: BayeuxConnection {
    struct State {
        var pushed: [JSONValue] = []
        var connectReplies: [JSONValue] = []
        var closedReason: CloseReason?
        var notifications = 0
    }
    let state = Mutex(State())
    /// Drain at once when notified (like a fast socket); off to model a stalled one.
    let drainsImmediately: Bool

    init(drainsImmediately: Bool = true) { self.drainsImmediately = drainsImmediately }

    func messagesAvailable(_ session: Session) {
        state.withLock { $0.notifications += 1 }
        if drainsImmediately { drain(session) }
    }

    func drain(_ session: Session) {
        var drained: [JSONValue] = []
        session.drain(for: self) { queue, _, _ in
            drained = queue.map { try! JSONParser.parse(String(buffer: $0)) }
        }
        state.withLock { $0.pushed += drained }
    }

    func sessionClosed(_ session: Session, reason: CloseReason) {
        state.withLock { $0.closedReason = reason }
    }

    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer]) {
        let parsed = try! JSONParser.parse(String(buffer: reply))
        let events = events.map { try! JSONParser.parse(String(buffer: $0)) }
        state.withLock {
            $0.connectReplies.append(parsed)
            $0.pushed += events
        }
    }

    var pushed: [JSONValue] { state.withLock { $0.pushed } }
    var connectReplies: [JSONValue] { state.withLock { $0.connectReplies } }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? { objectValue?[key] }
}

/// Drives a broker the way a transport would, with one connection per client.
struct CoreClient {
    let broker: Broker
    let type: ConnectionType
    let connection: MemoryConnection
    /// What a transport shows for this client's connection (`SessionBinding`).
    let proof = ClientProof(connection: ConnectionNumbers.take())
    var clientId: String = ""
    var nextId = 0

    init(_ broker: Broker, type: ConnectionType = .websocket, connection: MemoryConnection = MemoryConnection()) {
        self.broker = broker
        self.type = type
        self.connection = connection
    }

    /// Sends a batch (JSON text) and returns the replies and events written at once.
    func send(_ json: String, credential: HandshakeCredential = .absent) -> (replies: [JSONValue], result: BatchResult) {
        let messages = try! MessageCodec.decodeBatch(ByteBuffer(string: json))
        let result = broker.process(messages, type: type, connection: connection, credential: credential, proof: proof)
        let replies = (result.replies + result.events).map { try! JSONParser.parse(String(buffer: $0)) }
        return (replies, result)
    }

    func sendOne(_ json: String) -> JSONValue {
        let (replies, _) = send(json)
        precondition(replies.count == 1, "expected one reply, got \(replies)")
        return replies[0]
    }

    mutating func handshake(credential: HandshakeCredential = .absent) -> JSONValue {
        let replies = send(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket","long-polling"],"id":"h"}]"#, credential: credential).replies
        precondition(replies.count == 1, "expected one reply, got \(replies)")
        clientId = replies[0]["clientId"]?.stringValue ?? ""
        return replies[0]
    }

    /// Handshake and the first (immediate) connect.
    mutating func connected(credential: HandshakeCredential = .absent) -> Self {
        _ = handshake(credential: credential)
        _ = connect()
        return self
    }

    func connect(id: String = "c", advice: String = "") -> (replies: [JSONValue], result: BatchResult) {
        send(#"[{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"\#(type.rawValue)","id":"\#(id)"\#(advice)}]"#)
    }

    func subscribe(_ subscription: String) -> JSONValue {
        sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(clientId)","subscription":\#(subscription.hasPrefix("[") ? subscription : "\"\(subscription)\""),"id":"s"}]"#)
    }

    /// Subscribes to `channel` asking for a replay from `position` (`ext.replay`: `-2`, `-1`,
    /// an offset, or `{"offset":…,"epoch":…}`).
    func subscribe(_ channel: String, replay position: String) -> JSONValue {
        sendOne(#"[{"channel":"/meta/subscribe","clientId":"\#(clientId)","subscription":"\#(channel)","ext":{"replay":{"\#(channel)":\#(position)}}}]"#)
    }

    func unsubscribe(_ subscription: String) -> JSONValue {
        sendOne(#"[{"channel":"/meta/unsubscribe","clientId":"\#(clientId)","subscription":"\#(subscription)","id":"u"}]"#)
    }

    func publish(_ channel: String, _ data: String, id: String = "p") -> JSONValue {
        sendOne(#"[{"channel":"\#(channel)","clientId":"\#(clientId)","data":\#(data),"id":"\#(id)"}]"#)
    }

    var pushed: [JSONValue] { connection.pushed }
}
