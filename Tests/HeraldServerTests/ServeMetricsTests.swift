import Foundation
import HeraldProtocol
import Testing

/// `/metrics` of the real `herald serve`, which bootstraps swift-metrics with the Prometheus
/// registry: what the libraries record through swift-metrics (delivery latency, store commits)
/// shows up next to the broker's counters.
@Suite struct ServeMetricsTests {
    @Test func deliveryLatencyIsAHistogramInTheServedMetrics() async throws {
        let directory = NSTemporaryDirectory() + "herald-metrics-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await CrashTests.ServerProcess.start(dataDirectory: directory)
        defer { if server.process.isRunning { server.process.terminate() } }
        let (data, admin) = (server.port, server.adminPort)

        let subscriber = try await RawBayeuxSocket.connect(port: data)
        _ = try await subscriber.exchange([#"{"channel":"/meta/subscribe","clientId":"\#(subscriber.clientId)","subscription":"/px","id":"s"}"#], expectReplies: 1)
        for n in 0..<3 {
            let published = try await TestHTTP.request("POST", port: admin, path: "/v1/publish", headers: [("Content-Type", "application/json")], body: Array(#"{"channel":"/px","data":\#(n)}"#.utf8), on: LiveServer.group)
            #expect(published.status == 200)
            _ = try await subscriber.events(1)
        }
        let metrics = try await TestHTTP.request("GET", port: admin, path: "/metrics", on: LiveServer.group).text
        let count = metrics.split(separator: "\n").first { $0.hasPrefix("herald_delivery_latency_seconds_count") }
            .flatMap { $0.split(separator: " ").last }.flatMap { Int($0) }
        #expect((1...3).contains(count ?? 0), "one sample per flush pass that wrote a delivery:\n\(metrics)")
        #expect(metrics.contains(#"herald_delivery_latency_seconds_bucket{le="+Inf"}"#))
        #expect(metrics.contains(#"herald_delivery_latency_seconds_bucket{le="0.00005"}"#), "buckets from 50 µs")
        #expect(metrics.contains("# TYPE herald_delivery_latency_seconds histogram"))
        await subscriber.close()
    }
}
