import HeraldCore
import HeraldProtocol
import NIOCore
import Testing

/// The transport contract without sockets: batch results from a real broker, fed to the state
/// machine as a WebSocket or an HTTP handler would feed them.
@Suite struct TransportStateMachineTests {
    /// The messages of a `.send` output, parsed; nil for any other output.
    static func sent(_ output: TransportStateMachine.Output) -> [JSONValue]? {
        guard case .send(let messages) = output else { return nil }
        return messages.map { try! JSONParser.parse(String(buffer: $0)) }
    }

    static func isNothing(_ output: TransportStateMachine.Output) -> Bool {
        if case .nothing = output { return true }
        return false
    }

    @Test func webSocketBindsTheConnectedSessionAndHoldsLaterConnects() throws {
        let broker = Broker()
        var client = CoreClient(broker)
        var machine = TransportStateMachine(kind: .push)

        let handshake = machine.batchProcessed(client.send(handshakeJSON).result, connection: client.connection)
        #expect(Self.sent(handshake.output)?.first?["successful"] == .bool(true))
        #expect(machine.session == nil)
        client.clientId = Self.sent(handshake.output)?.first?["clientId"]?.stringValue ?? ""

        // The first connect is answered at once and binds the session.
        let first = machine.batchProcessed(client.connect().result, connection: client.connection)
        #expect(first.detach == nil)
        #expect(first.startHeldTimer == nil)
        #expect(Self.sent(first.output)?.first?["channel"] == .string("/meta/connect"))
        let session = try #require(machine.session)
        #expect(session.id == client.clientId)

        // The next is held: a timer, nothing to send.
        let second = machine.batchProcessed(client.connect(id: "c2").result, connection: client.connection)
        #expect(second.startHeldTimer?.session === session)
        #expect(!second.cancelHeldTimer)
        #expect(Self.isNothing(second.output))

        // A third replaces it: the old timer goes, a new one starts.
        let third = machine.batchProcessed(client.connect(id: "c3").result, connection: client.connection)
        #expect(third.cancelHeldTimer)
        #expect(third.startHeldTimer != nil)
        #expect(third.startHeldTimer?.token != second.startHeldTimer?.token)
        #expect(third.detach == nil)
    }

    @Test func webSocketMovingToAnotherSessionDetachesTheOldOne() throws {
        let broker = Broker()
        let connection = MemoryConnection()
        var a = CoreClient(broker, connection: connection)
        var b = CoreClient(broker, connection: connection)
        _ = a.handshake()
        _ = b.handshake()
        var machine = TransportStateMachine(kind: .push)
        _ = machine.batchProcessed(a.connect().result, connection: connection)
        let first = try #require(machine.session)
        let moved = machine.batchProcessed(b.connect().result, connection: connection)
        #expect(moved.detach?.session === first)
        #expect(moved.detach?.connection === connection)
        #expect(machine.session?.id == b.clientId)
        // The same session connecting again is no move.
        let sameSession = machine.batchProcessed(b.connect(id: "again").result, connection: connection)
        #expect(sameSession.detach == nil)
    }

    @Test func webSocketSendsNothingForAnEmptyBatchButARequestIsAlwaysAnswered() {
        let empty = BatchResult()
        var push = TransportStateMachine(kind: .push)
        let pushEmpty = push.batchProcessed(empty, connection: MemoryConnection())
        #expect(Self.isNothing(pushEmpty.output))
        var request = TransportStateMachine(kind: .requestResponse)
        let requestEmpty = request.batchProcessed(empty, connection: MemoryConnection())
        #expect(Self.sent(requestEmpty.output) == [])
    }

    @Test func closingDetachesAndCancelsOnceAndLateBatchesAreDetached() throws {
        let broker = Broker()
        var client = CoreClient(broker)
        _ = client.connected()
        var machine = TransportStateMachine(kind: .push)
        _ = machine.batchProcessed(client.connect(id: "bind").result, connection: client.connection)
        let session = try #require(machine.session)

        let closed = machine.connectionClosed()
        #expect(closed.detach?.session === session)
        #expect(closed.cancelHeldTimer)
        #expect(machine.isClosed)
        #expect(machine.session == nil)
        let again = machine.connectionClosed()
        #expect(again.detach == nil)
        #expect(!again.cancelHeldTimer)

        // A batch that raced the close: its session must not stay routed to the dead socket.
        client.clientId = session.id
        let late = machine.batchProcessed(client.connect(id: "late").result, connection: client.connection)
        #expect(late.detach?.session === session)
        #expect(late.startHeldTimer == nil)
        #expect(Self.isNothing(late.output))
        let lateAnswer = machine.heldConnectAnswered(exchange: nil, messages: [ByteBuffer(string: "{}")])
        #expect(lateAnswer.detach == nil)
        let lateAnswerOutput = machine.heldConnectAnswered(exchange: nil, messages: [ByteBuffer(string: "{}")])
        #expect(Self.isNothing(lateAnswerOutput.output))
    }

    @Test func sessionClosedClosesOnlyTheWebSocketCarryingIt() throws {
        let broker = Broker()
        var client = CoreClient(broker)
        _ = client.connected()
        var other = CoreClient(broker)
        _ = other.connected()
        var machine = TransportStateMachine(kind: .push)
        _ = machine.batchProcessed(client.connect(id: "bind").result, connection: client.connection)
        let session = try #require(machine.session)
        let otherSession = try #require(broker.session(id: other.clientId))
        let otherClosed = machine.sessionClosed(otherSession)
        #expect(!otherClosed)
        let ownClosed = machine.sessionClosed(session)
        #expect(ownClosed)
        #expect(machine.session == nil)
        let closedTwice = machine.sessionClosed(session)
        #expect(!closedTwice)
        _ = other
        _ = client

        var request = TransportStateMachine(kind: .requestResponse)
        let requestClosed = request.sessionClosed(session)
        #expect(!requestClosed)
    }

    @Test func aRequestHoldsItsConnectUntilItsOwnAnswer() throws {
        let broker = Broker()
        var client = CoreClient(broker, type: .longPolling)
        _ = client.connected()
        var machine = TransportStateMachine(kind: .requestResponse)
        let exchange = machine.nextExchange
        let held = machine.batchProcessed(client.connect(id: "held").result, connection: client.connection)
        #expect(machine.exchange == exchange)
        let connect = try #require(held.startHeldTimer)
        #expect(Self.isNothing(held.output))
        #expect(machine.session === connect.session)

        // An answer meant for another request goes nowhere.
        let stale = machine.heldConnectAnswered(exchange: exchange - 1, messages: [ByteBuffer(string: #"{"stale":true}"#)])
        #expect(Self.isNothing(stale.output))
        #expect(!stale.cancelHeldTimer)

        let answered = machine.heldConnectAnswered(exchange: exchange, messages: [ByteBuffer(string: #"{"ok":true}"#)])
        #expect(Self.sent(answered.output) == [.object(JSONObject([("ok", .bool(true))]))])
        #expect(answered.cancelHeldTimer)
        #expect(machine.session == nil)
        // Answered once only.
        let answeredTwice = machine.heldConnectAnswered(exchange: exchange, messages: [])
        #expect(Self.isNothing(answeredTwice.output))
        _ = client
    }

    @Test func closingAConnectionThatHoldsAConnectDetachesItsRequest() throws {
        let broker = Broker()
        var client = CoreClient(broker, type: .longPolling)
        _ = client.connected()
        var machine = TransportStateMachine(kind: .requestResponse)
        let held = machine.batchProcessed(client.connect(id: "held").result, connection: client.connection)
        let connect = try #require(held.startHeldTimer)
        let closed = machine.connectionClosed()
        #expect(closed.detach?.session === connect.session)
        #expect(closed.detach?.connection === client.connection)
        #expect(closed.cancelHeldTimer)
        _ = client
    }

    @Test(arguments: [TransportStateMachine.Kind.push, .requestResponse])
    func repliesBehindACommitGoWhereTheyStillCan(kind: TransportStateMachine.Kind) throws {
        var result = BatchResult()
        result.replies = [ByteBuffer(string: #"{"id":"1"}"#), ByteBuffer(string: #"{"id":"2"}"#)]
        result.events = [ByteBuffer(string: #"{"event":true}"#)]
        result.commitGate = CommitGate()
        var machine = TransportStateMachine(kind: kind)
        let actions = machine.batchProcessed(result, connection: MemoryConnection())
        guard case .sendWhenCommitted(_, let awaiting) = actions.output else {
            Issue.record("expected the replies to wait for the commit, got \(actions.output)")
            return
        }
        // The second publish failed to commit: its reply is replaced.
        let replaced = try #require(machine.committed(awaiting, replacements: [1: ByteBuffer(string: #"{"id":"2","successful":false}"#)]))
        #expect(replaced.map { String(buffer: $0) } == [#"{"id":"1"}"#, #"{"id":"2","successful":false}"#, #"{"event":true}"#])

        // A later batch: a request has been answered already; a WebSocket still takes it.
        _ = machine.batchProcessed(BatchResult(), connection: MemoryConnection())
        #expect((machine.committed(awaiting, replacements: [:]) == nil) == (kind == .requestResponse))
        // Closed: nowhere to go.
        _ = machine.connectionClosed()
        #expect(machine.committed(awaiting, replacements: [:]) == nil)
    }

    let handshakeJSON = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket","long-polling"],"id":"h"}]"#
}
