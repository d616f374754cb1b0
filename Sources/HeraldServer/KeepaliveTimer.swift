import NIOCore

/// One repeating timer per event loop for the WebSocket keepalive of all its connections,
/// instead of a `RepeatedTask` per connection: scheduling and cancelling one per connection
/// was a measurable part of connection setup, and kept NIO's timer heap as large as the
/// connection count.
///
/// Each tick calls `WebSocketHandler.keepalive()`, which counts silent intervals. A
/// connection's first tick comes anywhere within its first interval, so pings start after one
/// to two silent intervals.
final class KeepaliveTimer: Sendable {
    let eventLoop: any EventLoop
    let interval: TimeAmount
    private let members: NIOLoopBoundBox<[ObjectIdentifier: WebSocketHandler]>
    private let task: NIOLoopBoundBox<RepeatedTask?>

    init(eventLoop: any EventLoop, interval: TimeAmount) {
        self.eventLoop = eventLoop
        self.interval = interval
        self.members = .makeBoxSendingValue([:], eventLoop: eventLoop)
        self.task = .makeBoxSendingValue(nil, eventLoop: eventLoop)
    }

    /// On the event loop.
    func add(_ handler: WebSocketHandler) {
        members.value[ObjectIdentifier(handler)] = handler
        if task.value == nil {
            task.value = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                tick()
            }
        }
    }

    /// On the event loop.
    func remove(_ handler: WebSocketHandler) {
        members.value[ObjectIdentifier(handler)] = nil
    }

    private func tick() {
        // A copy: `keepalive()` may close its connection, which removes it.
        for handler in Array(members.value.values) { handler.keepalive() }
        if members.value.isEmpty {
            task.value?.cancel()
            task.value = nil
        }
    }
}
