import NIOCore

/// A connection that a `ConnectionTicker` calls on every tick, on its event loop.
protocol TickedConnection: AnyObject {
    func tick(now: NIODeadline)
    /// The server is shutting down: finish what is in flight, tell the client to come back
    /// later, and close.
    func quiesce()
}

/// One repeating timer per event loop for a periodic check of all its connections, instead
/// of a `RepeatedTask` per connection: scheduling and cancelling one per connection was a
/// measurable part of connection setup, and kept NIO's timer heap as large as the connection
/// count. Herald runs two per loop: the WebSocket keepalive (`WebSocketHandler.keepalive()`)
/// and the HTTP request timeout (`RequestDeadline`).
///
/// A connection's first tick comes anywhere within its first interval.
final class ConnectionTicker: Sendable {
    let eventLoop: any EventLoop
    let interval: TimeAmount
    private let members: NIOLoopBoundBox<[ObjectIdentifier: any TickedConnection]>
    private let task: NIOLoopBoundBox<RepeatedTask?>
    /// Set by `quiesce()`: members that join later (an upgrade finishing, a request that was
    /// in flight) are quiesced as they join.
    private let quiescing: NIOLoopBoundBox<Bool>

    init(eventLoop: any EventLoop, interval: TimeAmount) {
        self.eventLoop = eventLoop
        self.interval = interval
        self.members = .makeBoxSendingValue([:], eventLoop: eventLoop)
        self.task = .makeBoxSendingValue(nil, eventLoop: eventLoop)
        self.quiescing = .makeBoxSendingValue(false, eventLoop: eventLoop)
    }

    /// On the event loop.
    func add(_ member: any TickedConnection) {
        members.value[ObjectIdentifier(member)] = member
        if quiescing.value {
            // Not from inside the caller's `handlerAdded`: on the next loop iteration.
            let member = NIOLoopBound(member, eventLoop: eventLoop)
            eventLoop.execute { member.value.quiesce() }
        }
        if task.value == nil {
            task.value = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                tick()
            }
        }
    }

    /// On the event loop.
    func remove(_ member: any TickedConnection) {
        members.value[ObjectIdentifier(member)] = nil
    }

    /// On the event loop: quiesces every member, now and as they join.
    func quiesce() {
        guard !quiescing.value else { return }
        quiescing.value = true
        for member in Array(members.value.values) { member.quiesce() }
    }

    private func tick() {
        let now = NIODeadline.now()
        // A copy: a member may close its connection, which removes it.
        for member in Array(members.value.values) { member.tick(now: now) }
        if members.value.isEmpty {
            task.value?.cancel()
            task.value = nil
        }
    }
}

/// The HTTP request timeout of one connection (`ServerConfiguration.requestTimeoutSeconds`):
/// from its accept, and again from each response, the next request must arrive complete
/// (head and body) within the timeout, or the connection is closed. A request being handled,
/// such as a held `/meta/connect`, is not waiting. This bounds what a client that connects and
/// sends nothing, or trickles a request a byte at a time, can hold.
struct RequestDeadline {
    let timeout: TimeAmount
    /// When the connection started waiting for a request; nil while one is being handled.
    private(set) var waitingSince: NIODeadline?

    init(timeout: TimeAmount, waitingSince: NIODeadline? = .now()) {
        self.timeout = timeout
        self.waitingSince = waitingSince
    }

    /// A complete request arrived.
    mutating func requestReceived() { waitingSince = nil }

    /// A response was written: the wait for the next request starts.
    mutating func responded(now: NIODeadline = .now()) { waitingSince = now }

    func hasExpired(now: NIODeadline) -> Bool {
        guard let waitingSince else { return false }
        return now - waitingSince >= timeout
    }
}
