import Logging
public import ServiceLifecycle

/// Runs the broker until graceful shutdown: the store's group-commit loop as a child task,
/// and the housekeeping timer (rate-limit releases, session and history expiry). Then it
/// shuts the broker down, and it is the only thing that does: every session is ended with
/// `reconnect: retry`, what is left to write is committed, and the store is closed.
///
/// Put it **before** the listeners in the `ServiceGroup`: services are shut down in reverse
/// order, so the listeners stop accepting and close their connections first, and the broker
/// goes last, with nothing left that could still publish.
public struct BrokerService: Service {
    public let broker: Broker

    public init(broker: Broker) {
        self.broker = broker
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await broker.runStoreWriter() }
            await cancelWhenGracefulShutdown { await housekeeping() }
            broker.logger.info("broker shutting down", metadata: ["sessions": "\(broker.sessionCount)"])
            broker.shutdown()
            // The writer commits what is left and returns; the store then closes. Both go on
            // if this task was cancelled: acknowledged writes are not given up.
            await broker.closeStore()
            await group.waitForAll()
        }
        let stats = broker.storeStatistics
        if stats.commits > 0 {
            broker.logger.info("message store closed", metadata: ["writes": "\(stats.writes)", "commits": "\(stats.commits)", "failures": "\(stats.failures)"])
        }
    }

    /// Releases rate-limited messages every `throttleTickMilliseconds` and sweeps expired
    /// sessions and history every `sweepIntervalMilliseconds`, until cancelled.
    private func housekeeping() async {
        let tick = max(1, min(broker.configuration.throttleTickMilliseconds, broker.configuration.sweepIntervalMilliseconds))
        let ticksPerSweep = max(1, broker.configuration.sweepIntervalMilliseconds / tick)
        var ticks = 0
        while true {
            do {
                try await Task.sleep(for: .milliseconds(tick))
            } catch {
                return
            }
            broker.releaseThrottled()
            ticks += 1
            if ticks % ticksPerSweep == 0 { broker.expireSessions() }
        }
    }
}
