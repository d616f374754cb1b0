import Logging
import ServiceLifecycle

/// Runs the broker's housekeeping (session expiry) until graceful shutdown, then ends every
/// session with `reconnect: retry` so clients come back when the server does.
public struct BrokerService: Service {
    public let broker: Broker

    public init(broker: Broker) {
        self.broker = broker
    }

    public func run() async throws {
        let tick = max(1, min(broker.configuration.throttleTickMilliseconds, broker.configuration.sweepIntervalMilliseconds))
        let ticksPerSweep = max(1, broker.configuration.sweepIntervalMilliseconds / tick)
        let writer = Task { await broker.runStoreWriter() }
        await withTaskCancellationHandler {
            await cancelWhenGracefulShutdown {
                var ticks = 0
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: .milliseconds(tick))
                    } catch {
                        break
                    }
                    broker.releaseThrottled()
                    ticks += 1
                    if ticks % ticksPerSweep == 0 { broker.expireSessions() }
                }
            }
        } onCancel: {}
        broker.logger.info("broker shutting down", metadata: ["sessions": "\(broker.sessionCount)"])
        // Outside this (possibly cancelled) task: the store's final commit must not be
        // cancelled with it.
        await Task {
            broker.shutdown()
            await broker.closeStore()
        }.value
        await writer.value
        let stats = broker.storeStatistics
        if stats.commits > 0 {
            broker.logger.info("message store closed", metadata: ["writes": "\(stats.writes)", "commits": "\(stats.commits)", "failures": "\(stats.failures)"])
        }
    }
}
