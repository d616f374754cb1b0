import Synchronization

/// A `MessageStore` in memory: the twin of the SQLite store for tests. It survives a broker
/// restart within one process (hand the same instance to the new broker), not a process exit.
public final class InMemoryMessageStore: MessageStore {
    struct State {
        var channels: [String: StoredChannel] = [:]
        var open = false
        var cleanShutdown = true
        var commits = 0
        var failuresToInject = 0
    }

    /// The error of a write failed by `failNextWrites(_:)`.
    public struct InjectedFailure: Error {}
    let state = Mutex(State())

    public init() {}

    /// Number of `write` calls so far (group-commit tests).
    public var commitCount: Int { state.withLock { $0.commits } }

    public func open() async throws -> StoreRecovery {
        state.withLock { s in
            let clean = s.cleanShutdown
            s.open = true
            s.cleanShutdown = false
            return StoreRecovery(channels: s.channels.values.sorted { $0.name < $1.name }, cleanShutdown: clean)
        }
    }

    /// Makes the next `count` writes fail, as a full or broken disk would.
    public func failNextWrites(_ count: Int) {
        state.withLock { $0.failuresToInject = count }
    }

    public func write(_ writes: [StoreWrite]) async throws {
        try state.withLock { s in
            if s.failuresToInject > 0 {
                s.failuresToInject -= 1
                throw InjectedFailure()
            }
            s.commits += 1
            for write in writes { Self.apply(write, to: &s.channels) }
        }
    }

    public func close() async throws {
        state.withLock { s in
            s.open = false
            s.cleanShutdown = true
        }
    }

    /// Simulates a crash: the next `open` reports an unclean shutdown.
    public func crash() {
        state.withLock { $0.open = false }
    }

    static func apply(_ write: StoreWrite, to channels: inout [String: StoredChannel]) {
        switch write {
        case .append(let name, let epoch, let message, let historyFrom, let retain):
            var channel = channels[name] ?? StoredChannel(name: name, epoch: epoch, lastOffset: 0)
            if channel.epoch != epoch {
                channel = StoredChannel(name: name, epoch: epoch, lastOffset: 0)
            }
            channel.lastOffset = max(channel.lastOffset, message.offset)
            if let historyFrom {
                channel.history.append(message)
                channel.history.removeAll { $0.offset < historyFrom }
            }
            if retain { channel.retained = message }
            channels[name] = channel
        case .trimHistory(let name, let before):
            channels[name]?.history.removeAll { $0.timestampMilliseconds < before }
        case .dropRetained(let name, let offset):
            if channels[name]?.retained?.offset == offset { channels[name]?.retained = nil }
        }
    }
}
