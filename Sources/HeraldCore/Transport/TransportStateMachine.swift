package import NIOCore

/// What one client connection does with what the broker answers, whatever carries it.
///
/// `Broker.process` returns a `BatchResult`: replies, events, perhaps a held `/meta/connect`,
/// perhaps a session the batch connected, perhaps a `CommitGate` that durable publishes hold
/// the replies behind. What that means for the connection (which session it is bound to,
/// when the held connect's timer runs, whether a late commit or connect reply still has
/// somewhere to go) is the same for every transport. This type decides it; the transports
/// only carry out its `Actions`. It does no I/O and keeps no clock, so it is tested without
/// sockets (in the manner of postgres-nio's connection state machines).
///
/// Two kinds of connection:
/// - `push` (WebSocket): one long-lived exchange. A `/meta/connect` binds its session to the
///   connection, which pushes the session's events from then on. Replies go out whenever
///   they are ready.
/// - `requestResponse` (long-polling, callback-polling): each batch is a request that gets
///   exactly one response, in order. A held connect binds the session to the request until
///   it is answered; a late answer for an earlier request goes nowhere.
package struct TransportStateMachine {
    package enum Kind: Sendable {
        case push
        case requestResponse
    }

    /// Replies held behind a commit. Hand it back to `committed(_:replacements:)` from
    /// `CommitGate.whenCommitted`.
    package struct AwaitingCommit: Sendable {
        package let exchange: Int
        package let replies: [ByteBuffer]
        package let events: [ByteBuffer]
    }

    /// What to send for a batch.
    package enum Output {
        /// Nothing now (an empty WebSocket batch, or a held connect).
        case nothing
        /// These messages, now: in the reply frame of the WebSocket read burst, or as the HTTP
        /// response (an empty array is still a response).
        case send([ByteBuffer])
        /// These messages, now, in a frame (or response) of their own: a held connect's answer,
        /// or replies released by a commit, outside any read burst.
        case sendAlone([ByteBuffer])
        /// Wait for `gate`, then send what `committed(_:replacements:)` returns.
        case sendWhenCommitted(CommitGate, AwaitingCommit)
    }

    /// Everything a transport does in answer to one event, in this order: detach, cancel the
    /// held connect's timer, start one, answer a held connect, send, close.
    package struct Actions {
        /// Stop routing `session` to `connection` (`Broker.detach`): the connection moved to
        /// another session, or went away.
        package var detach: (session: Session, connection: AnyObject)?
        /// Cancel the running held-connect timer.
        package var cancelHeldTimer = false
        /// Start a timer for `timeout`; when it fires, call `Broker.timeoutHeldConnect`.
        package var startHeldTimer: HeldConnect?
        /// Answer this held connect now, as if its time were up (`Broker.timeoutHeldConnect`):
        /// the server is shutting down. The answer comes back through `heldConnectAnswered`.
        package var answerHeldConnect: HeldConnect?
        package var output = Output.nothing
        /// Close the connection as the server goes away (WebSocket 1001), after the output.
        package var closeForShutdown = false

        init() {}
    }

    package let kind: Kind
    /// The session whose events this connection carries, and the connection object the
    /// broker knows it by (the WebSocket, or the request holding the connect).
    private var bound: (session: Session, connection: AnyObject)?
    /// The held connect whose timer runs, and the exchange it belongs to.
    private var held: (connect: HeldConnect, exchange: Int)?
    /// Batches processed so far; the number of the current one.
    package private(set) var exchange = 0
    package private(set) var isClosed = false
    /// The server is shutting down (`quiesce()`): held connects are answered at once, and a
    /// WebSocket closes once nothing it owes the client is waiting for a commit.
    package private(set) var isQuiescing = false
    /// Batches whose replies wait for a commit.
    private var awaitingCommits = 0
    /// The number the next batch will get: what a request's responder is told it answers.
    package var nextExchange: Int { exchange + 1 }

    package init(kind: Kind) {
        self.kind = kind
    }

    /// The session bound to this connection, if any.
    package var session: Session? { bound?.session }

    /// A batch was processed by `Broker.process(_:type:connection:)` with `connection`.
    package mutating func batchProcessed(_ result: BatchResult, connection: AnyObject) -> Actions {
        var actions = Actions()
        if isClosed {
            // The connection went away while the batch was on its way: the broker must not
            // keep routing to it, nor hold a connect for it.
            if let session = result.connectedSession ?? result.held?.session { actions.detach = (session, connection) }
            return actions
        }
        exchange += 1
        if kind == .push, let connected = result.connectedSession, connected !== bound?.session {
            actions.detach = bound
            bound = (connected, connection)
        }
        if let connect = result.held {
            actions.cancelHeldTimer = held != nil
            actions.startHeldTimer = connect
            held = (connect, exchange)
            if isQuiescing { actions.answerHeldConnect = connect }
            if kind == .requestResponse {
                // The response waits for the connect's answer. A held connect is alone in its
                // request (bayeux-notes rule 6), so there is nothing else to send.
                bound = (connect.session, connection)
                return actions
            }
        }
        if let gate = result.commitGate {
            awaitingCommits += 1
            actions.output = .sendWhenCommitted(gate, AwaitingCommit(exchange: exchange, replies: result.replies, events: result.events))
        } else if kind == .requestResponse || !result.isEmpty {
            actions.output = .send(result.replies + result.events)
        }
        return actions
    }

    /// The batch `awaiting` belongs to was committed: send its replies, unless they have
    /// nowhere to go (the connection closed, or, for a request, it was answered already).
    package mutating func committed(_ awaiting: AwaitingCommit, replacements: [Int: ByteBuffer]) -> Actions {
        var actions = Actions()
        awaitingCommits -= 1
        guard !isClosed else { return actions }
        if kind == .requestResponse, awaiting.exchange != exchange { return actions }
        actions.output = .sendAlone(CommitGate.apply(replacements, to: awaiting.replies) + awaiting.events)
        actions.closeForShutdown = kind == .push && isQuiescing && awaitingCommits == 0
        return actions
    }

    /// The server is shutting down: answer the held connect now, and close a WebSocket as
    /// soon as no reply waits for a commit (a request's connection is closed by the HTTP
    /// layer after its response). Idempotent.
    package mutating func quiesce() -> Actions {
        var actions = Actions()
        guard !isClosed, !isQuiescing else { return actions }
        isQuiescing = true
        actions.answerHeldConnect = held?.connect
        actions.closeForShutdown = kind == .push && awaitingCommits == 0
        return actions
    }

    /// The broker answered a held connect of this connection with `messages` (events arrived,
    /// it timed out, it was superseded or its session ended). For a request, `exchange` names
    /// the request that held it: an answer for any but the held one is dropped.
    package mutating func heldConnectAnswered(exchange: Int?, messages: [ByteBuffer]) -> Actions {
        var actions = Actions()
        guard !isClosed else { return actions }
        switch kind {
        case .push:
            // A WebSocket answers every connect it held, each in a frame of its own. The timer
            // keeps running: it may belong to a newer connect, and the broker ignores a
            // timeout for a connect that has ended.
            actions.output = .sendAlone(messages)
        case .requestResponse:
            guard let current = held, current.exchange == exchange else { return actions }
            held = nil
            bound = nil
            actions.cancelHeldTimer = true
            actions.output = .sendAlone(messages)
        }
        return actions
    }

    /// The server ended `session`. True when the connection carries it and must be closed
    /// with the reason (WebSocket); a request's held connect is answered by the broker.
    package mutating func sessionClosed(_ session: Session) -> Bool {
        guard kind == .push, !isClosed, bound?.session === session else { return false }
        bound = nil
        return true
    }

    /// The connection is gone. Idempotent.
    package mutating func connectionClosed() -> Actions {
        var actions = Actions()
        guard !isClosed else { return actions }
        isClosed = true
        actions.detach = bound
        bound = nil
        actions.cancelHeldTimer = held != nil
        held = nil
        return actions
    }
}
