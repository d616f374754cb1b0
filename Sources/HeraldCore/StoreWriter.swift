import Logging
import Metrics
import Synchronization

/// Writes behind the hot path: publishes append to a queue under a short lock, and one task
/// commits whatever has gathered in a single `MessageStore.write` (group commit). Durable
/// publishes pass a callback that runs once their batch is committed.
final class StoreWriter: Sendable {
    typealias Completion = @Sendable (Bool) -> Void

    struct Pending {
        var writes: [StoreWrite] = []
        var completions: [Completion] = []
        var signalled = false
        var finished = false
        /// `run()` has started (it runs once).
        var started = false
        /// `run()` has returned.
        var stopped = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let store: any MessageStore
    let logger: Logger
    let pending = Mutex(Pending())
    let signal: AsyncStream<Void>.Continuation
    let wakeups: AsyncStream<Void>
    let commits = Atomic<Int>(0)
    let committedWrites = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    /// Through swift-metrics, for whatever backend the process bootstrapped (the executable:
    /// Prometheus): how long each commit takes, and how many writes it carries.
    let commitDuration = Metrics.Timer(label: "herald_store_commit_duration_seconds")
    let commitSize = Recorder(label: "herald_store_commit_writes", aggregate: true)

    init(store: any MessageStore, logger: Logger) {
        self.store = store
        self.logger = logger
        (wakeups, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `writes` for the next commit; false, and nothing queued, once `finish()` was
    /// called (`onCommit` then never runs).
    @discardableResult
    func enqueue(_ writes: [StoreWrite], onCommit: Completion? = nil) -> Bool {
        let (accepted, wake) = pending.withLock { p -> (Bool, Bool) in
            guard !p.finished else { return (false, false) }
            p.writes.append(contentsOf: writes)
            if let onCommit { p.completions.append(onCommit) }
            defer { p.signalled = true }
            return (true, !p.signalled)
        }
        if wake { signal.yield() }
        return accepted
    }

    /// How long the writer lets writes gather after the first one before committing: a few
    /// milliseconds turn many small transactions into one (group commit).
    static let gatherMilliseconds = 2

    /// Commits batches until `finish()`, then commits what is left and returns. Runs once: a
    /// second call returns at once.
    func run() async {
        let first = pending.withLock { p -> Bool in
            defer { p.started = true }
            return !p.started
        }
        guard first else { return }
        // A cancelled task ends the iteration; what is pending is still committed below, and
        // what comes after by `commitRemaining()`.
        for await _ in wakeups {
            try? await Task.sleep(for: .milliseconds(Self.gatherMilliseconds))
            await drain()
            if pending.withLock({ $0.finished && $0.writes.isEmpty }) { break }
        }
        await drain()
        let waiters = pending.withLock { p -> [CheckedContinuation<Void, Never>] in
            p.stopped = true
            defer { p.stopWaiters = [] }
            return p.stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Stops taking writes; `run()` commits what is left and returns.
    func finish() {
        pending.withLock { $0.finished = true }
        signal.yield()
        signal.finish()
    }

    /// After `finish()`: returns once everything queued is committed. Runs the loop here if
    /// nothing else has (a broker whose writer was never started still commits what it
    /// queued), and commits once more after it: a cancelled `run()` stops early, and writes
    /// may have been queued until `finish()`.
    func commitRemaining() async {
        let runHere = pending.withLock { !$0.started }
        if runHere {
            await run()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = pending.withLock { p -> Bool in
                if p.stopped { return true }
                p.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        await drain()
    }

    private func drain() async {
        while true {
            let (writes, completions) = pending.withLock { p -> ([StoreWrite], [Completion]) in
                defer {
                    p.writes.removeAll(keepingCapacity: true)
                    p.completions.removeAll(keepingCapacity: true)
                    p.signalled = false
                }
                return (p.writes, p.completions)
            }
            if writes.isEmpty && completions.isEmpty { return }
            var ok = true
            do {
                let started = ContinuousClock.now
                try await store.write(writes)
                commitDuration.record(duration: ContinuousClock.now - started)
                commitSize.record(writes.count)
                commits.add(1, ordering: .relaxed)
                committedWrites.add(writes.count, ordering: .relaxed)
            } catch {
                ok = false
                failures.add(1, ordering: .relaxed)
                logger.error("message store write failed", metadata: ["error": "\(error)", "writes": "\(writes.count)"])
            }
            for completion in completions { completion(ok) }
        }
    }

}
