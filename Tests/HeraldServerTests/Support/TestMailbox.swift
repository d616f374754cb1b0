import NIOCore
import Synchronization

/// Errors shared by the test clients' receive paths.
enum TestMailboxError: Error, Sendable {
    case timeout(Duration)
    case concurrentReceive
}

/// A single-consumer, thread-safe FIFO that bridges event-loop callbacks to async callers.
///
/// - Elements are buffered until consumed (nothing is lost when a wait times out).
/// - A terminal event (EOF, close, error) is sticky: once the buffer is drained it is
///   returned to every subsequent call.
/// - Only one `next` may be outstanding at a time.
final class TestMailbox<Element: Sendable>: Sendable {
    private struct State {
        var buffer: [Element] = []
        var head = 0
        var terminal: Element?
        var waitID: UInt64?
        var waiter: CheckedContinuation<Element, any Error>?
        var pendingFailure: (any Error)?
        var idCounter: UInt64 = 0

        mutating func popFirst() -> Element? {
            guard self.head < self.buffer.count else { return nil }
            let element = self.buffer[self.head]
            self.head += 1
            if self.head > 64, self.head * 2 > self.buffer.count {
                self.buffer.removeFirst(self.head)
                self.head = 0
            }
            return element
        }

        var bufferedCount: Int { self.buffer.count - self.head }
    }

    private let state = Mutex(State())

    init() {}

    /// Number of buffered (unconsumed, non-terminal) elements.
    var bufferedCount: Int { self.state.withLock { $0.bufferedCount } }

    /// Whether a terminal element has been recorded.
    var isFinished: Bool { self.state.withLock { $0.terminal != nil } }

    /// Append an element; wakes the waiter if there is one. Ignored after `finish`.
    func push(_ element: Element) {
        let waiter: CheckedContinuation<Element, any Error>? = self.state.withLock { s in
            guard s.terminal == nil else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                s.waitID = nil
                return w
            }
            s.buffer.append(element)
            return nil
        }
        waiter?.resume(returning: element)
    }

    /// Record the terminal element (first call wins). Wakes the waiter if the buffer is empty.
    func finish(_ element: Element) {
        let waiter: CheckedContinuation<Element, any Error>? = self.state.withLock { s in
            guard s.terminal == nil else { return nil }
            s.terminal = element
            if let w = s.waiter {
                s.waiter = nil
                s.waitID = nil
                return w
            }
            return nil
        }
        waiter?.resume(returning: element)
    }

    private func fail(id: UInt64, error: any Error) {
        let waiter: CheckedContinuation<Element, any Error>? = self.state.withLock { s in
            guard s.waitID == id else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                s.waitID = nil
                return w
            }
            s.pendingFailure = error
            return nil
        }
        waiter?.resume(throwing: error)
    }

    /// Next element (buffered first, then the sticky terminal one). Throws `TestMailboxError.timeout`.
    func next(timeout: Duration, scheduler: any EventLoop) async throws -> Element {
        let id: UInt64 = try self.state.withLock { s in
            guard s.waitID == nil else { throw TestMailboxError.concurrentReceive }
            s.idCounter += 1
            s.waitID = s.idCounter
            s.pendingFailure = nil
            return s.idCounter
        }
        let timer = scheduler.scheduleTask(in: TimeAmount(timeout)) {
            self.fail(id: id, error: TestMailboxError.timeout(timeout))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Element, any Error>) in
                let immediate: Result<Element, any Error>? = self.state.withLock { s in
                    if let element = s.popFirst() {
                        s.waitID = nil
                        return .success(element)
                    }
                    if let terminal = s.terminal {
                        s.waitID = nil
                        return .success(terminal)
                    }
                    if let failure = s.pendingFailure {
                        s.waitID = nil
                        s.pendingFailure = nil
                        return .failure(failure)
                    }
                    s.waiter = cont
                    return nil
                }
                if let immediate {
                    cont.resume(with: immediate)
                }
            }
        } onCancel: {
            self.fail(id: id, error: CancellationError())
        }
    }
}
