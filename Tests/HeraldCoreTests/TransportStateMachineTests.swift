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

    /// The messages of a `.sendAlone` output, as text; nil for any other output.
    static func sentAlone(_ output: TransportStateMachine.Output) -> [String]? {
        guard case .sendAlone(let messages) = output else { return nil }
        return messages.map { String(buffer: $0) }
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
        // An answer to a connect held before the close has nowhere to go.
        let lateAnswer = machine.heldConnectAnswered(exchange: nil, messages: [ByteBuffer(string: "{}")])
        #expect(Self.isNothing(lateAnswer.output))
        // Nor has shutting down anything to do.
        let quiesced = machine.quiesce()
        #expect(quiesced.answerHeldConnect == nil)
        #expect(!quiesced.closeForShutdown)
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
        #expect(Self.sentAlone(answered.output) == [#"{"ok":true}"#])
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

        // A request whose connect the broker held while the connection was closing: its
        // session must not keep a connect nobody answers (it could then never expire).
        let late = machine.batchProcessed(client.connect(id: "late").result, connection: client.connection)
        #expect(late.detach?.session === connect.session)
        #expect(late.startHeldTimer == nil)
    }

    /// A batch whose replies wait for a commit.
    static func gatedBatch() -> BatchResult {
        var result = BatchResult()
        result.replies = [ByteBuffer(string: #"{"id":"1"}"#), ByteBuffer(string: #"{"id":"2"}"#)]
        result.events = [ByteBuffer(string: #"{"event":true}"#)]
        result.commitGate = CommitGate()
        return result
    }

    static func awaiting(_ actions: TransportStateMachine.Actions) -> TransportStateMachine.AwaitingCommit? {
        guard case .sendWhenCommitted(_, let awaiting) = actions.output else { return nil }
        return awaiting
    }

    @Test(arguments: [TransportStateMachine.Kind.push, .requestResponse])
    func repliesBehindACommitGoWhereTheyStillCan(kind: TransportStateMachine.Kind) throws {
        var machine = TransportStateMachine(kind: kind)
        let first = try #require(Self.awaiting(machine.batchProcessed(Self.gatedBatch(), connection: MemoryConnection())))
        // The second publish failed to commit: its reply is replaced.
        let replaced = machine.committed(first, replacements: [1: ByteBuffer(string: #"{"id":"2","successful":false}"#)])
        #expect(Self.sentAlone(replaced.output) == [#"{"id":"1"}"#, #"{"id":"2","successful":false}"#, #"{"event":true}"#])
        #expect(!replaced.closeForShutdown)

        // Committed after a later batch: a request has been answered already; a WebSocket
        // still takes the replies.
        let second = try #require(Self.awaiting(machine.batchProcessed(Self.gatedBatch(), connection: MemoryConnection())))
        _ = machine.batchProcessed(BatchResult(), connection: MemoryConnection())
        let late = machine.committed(second, replacements: [:])
        #expect((Self.sentAlone(late.output) == nil) == (kind == .requestResponse))

        // Committed after the connection closed: nowhere to go.
        let third = try #require(Self.awaiting(machine.batchProcessed(Self.gatedBatch(), connection: MemoryConnection())))
        _ = machine.connectionClosed()
        #expect(Self.isNothing(machine.committed(third, replacements: [:]).output))
    }

    @Test func aQuiescingWebSocketAnswersItsHeldConnectAndClosesOnceNothingAwaitsACommit() throws {
        let broker = Broker()
        var client = CoreClient(broker)
        _ = client.connected()
        var machine = TransportStateMachine(kind: .push)
        _ = machine.batchProcessed(client.connect(id: "bind").result, connection: client.connection)
        let held = try #require(machine.batchProcessed(client.connect(id: "held").result, connection: client.connection).startHeldTimer)
        let gated = try #require(Self.awaiting(machine.batchProcessed(Self.gatedBatch(), connection: client.connection)))

        let quiesced = machine.quiesce()
        #expect(machine.isQuiescing)
        #expect(quiesced.answerHeldConnect?.token == held.token)
        // A publish acknowledgement still waits for its commit: not yet.
        #expect(!quiesced.closeForShutdown)
        let again = machine.quiesce()
        #expect(again.answerHeldConnect == nil)
        #expect(!again.closeForShutdown)

        let committed = machine.committed(gated, replacements: [:])
        #expect(Self.sentAlone(committed.output)?.count == 3)
        #expect(committed.closeForShutdown)
        _ = client
    }

    @Test func aQuiescingWebSocketWithNothingPendingClosesAtOnce() {
        var machine = TransportStateMachine(kind: .push)
        let quiesced = machine.quiesce()
        #expect(quiesced.answerHeldConnect == nil)
        #expect(quiesced.closeForShutdown)
    }

    @Test func aQuiescingRequestAnswersItsHeldConnectAndAnyConnectHeldLater() throws {
        let broker = Broker()
        var client = CoreClient(broker, type: .longPolling)
        _ = client.connected()
        var machine = TransportStateMachine(kind: .requestResponse)
        let exchange = machine.nextExchange
        let held = try #require(machine.batchProcessed(client.connect(id: "held").result, connection: client.connection).startHeldTimer)
        let quiesced = machine.quiesce()
        #expect(quiesced.answerHeldConnect?.token == held.token)
        // The HTTP layer closes the connection after the response, not the state machine.
        #expect(!quiesced.closeForShutdown)
        _ = machine.heldConnectAnswered(exchange: exchange, messages: [ByteBuffer(string: "{}")])

        // A connect that was in flight when the shutdown began is answered at once.
        let later = machine.batchProcessed(client.connect(id: "later").result, connection: client.connection)
        let laterConnect = try #require(later.startHeldTimer)
        #expect(later.answerHeldConnect?.token == laterConnect.token)
        _ = client
    }

    let handshakeJSON = #"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket","long-polling"],"id":"h"}]"#
}
