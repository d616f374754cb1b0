import HeraldCore
import Prometheus
import Synchronization

/// `GET /metrics`: the broker's counters in Prometheus's text format, with what the process
/// recorded through swift-metrics (the store's commit latency) in the same registry.
///
/// The broker counts in plain atomics on the hot path; at each scrape they are carried into
/// Prometheus counters (by the growth since the last scrape) and gauges. Names follow
/// Prometheus's conventions (base units, `_total` on counters); labels stay low-cardinality:
/// a transport or a reason, never a channel or a client.
final class AdminMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let state: Mutex<State>

    private struct State {
        /// The counters' values at the last scrape.
        var last: [String: Int] = [:]
    }

    private let counters: [(name: String, help: String, value: @Sendable (Broker.Statistics) -> Int)] = [
        ("messages_published", "Messages published, by clients, services and the admin API.", { $0.published }),
        ("messages_delivered", "Messages queued for subscribers (one per subscriber).", { $0.delivered }),
        ("messages_dropped", "Pending messages replaced (conflate) or dropped (dropOldest) for slow subscribers.", { $0.dropped }),
        ("slow_consumer_disconnects", "Sessions ended because too much was waiting for them.", { $0.slowConsumers }),
        ("sessions_opened", "Successful handshakes.", { $0.sessionsOpened }),
        ("sessions_closed", "Sessions ended, for any reason.", { $0.sessionsClosed }),
        ("sessions_expired", "Sessions ended because their client stopped connecting.", { $0.sessionsExpired }),
        ("errors", "Replies with successful: false.", { $0.errors }),
        ("store_writes", "Writes committed to the message store.", { $0.storeWrites }),
        ("store_commits", "Commits to the message store (each holds many writes).", { $0.storeCommits }),
        ("store_failures", "Commits to the message store that failed.", { $0.storeFailures }),
    ]

    /// `herald_<name>[_<unit>]`.
    static func name(_ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "herald", metricName: name, unitName: unit, helpText: help)
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.state = Mutex(State())
    }

    /// The metrics, as of now.
    func scrape(broker: Broker, connections: [String: Int], traffic: (received: Int, sent: Int)?, uptimeSeconds: Double) -> [UInt8] {
        // Read under the lock: two scrapes at once must not carry the same growth twice.
        let stats = state.withLock { state -> Broker.Statistics in
            let stats = broker.statistics
            var values = counters.map { ($0.name, $0.help, $0.value(stats)) }
            if let traffic {
                values.append(("received_bytes", "Bytes received on the data plane: WebSocket frames and HTTP bodies.", traffic.received))
                values.append(("sent_bytes", "Bytes sent on the data plane: WebSocket frames and HTTP bodies.", traffic.sent))
            }
            for (name, help, value) in values {
                let grown = value - (state.last[name] ?? 0)
                let metric = registry.makeCounter(descriptor: Self.name(name, unit: "total", help: help))
                if grown > 0 { metric.increment(by: Int64(grown)) }
                state.last[name] = value
            }
            for (limit, count) in broker.limits.all {
                let key = "limit_trips:" + limit
                let grown = count - (state.last[key] ?? 0)
                let metric = registry.makeCounter(
                    descriptor: Self.name("limit_trips", unit: "total", help: "Requests refused and connections closed by a limit, by limit (docs/configuration.md lists them)."),
                    labels: [("limit", limit)]
                )
                if grown > 0 { metric.increment(by: Int64(grown)) }
                state.last[key] = count
            }
            return stats
        }
        for (transport, count) in connections {
            registry.makeGauge(descriptor: Self.name("connections", help: "Open connections, by transport."), labels: [("transport", transport)]).set(Double(count))
        }
        registry.makeGauge(descriptor: Self.name("sessions", help: "Sessions (Bayeux clients).")).set(Double(stats.sessions))
        registry.makeGauge(descriptor: Self.name("subscriptions", help: "Subscriptions, over all sessions.")).set(Double(stats.subscriptions))
        registry.makeGauge(descriptor: Self.name("logged_channels", help: "Channels with a retained value or history.")).set(Double(stats.loggedChannels))
        registry.makeGauge(descriptor: Self.name("uptime", unit: "seconds", help: "Seconds since the admin API started.")).set(uptimeSeconds)
        if let rss = ProcessMemory.residentBytes() {
            // Not `process_resident_memory_bytes`: swift-system-metrics registers that name, with
            // other help text, in a service that embeds Herald and runs it on the same registry.
            registry.makeGauge(descriptor: Self.name("resident_memory", unit: "bytes", help: "Resident memory of the process, in bytes.")).set(Double(rss))
        }
        return registry.emitToBuffer()
    }
}
