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
        let interval = Duration.milliseconds(broker.configuration.sweepIntervalMilliseconds)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    break
                }
                broker.expireSessions()
            }
        } onGracefulShutdown: {
            broker.logger.info("broker shutting down", metadata: ["sessions": "\(broker.sessionCount)"])
        }
        broker.shutdown()
    }
}
