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
        let process = Process()
        process.executableURL = CrashTests.heraldBinary
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--data-dir", directory, "--log-level", "error"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let line = try await ChildProcess.firstLine(of: output)
        let data = try #require(line.firstMatch(of: /data=http:\/\/127\.0\.0\.1:(\d+)\//).flatMap { Int($0.1) }, "\(line)")
        let admin = try #require(line.firstMatch(of: /admin=http:\/\/127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }, "\(line)")

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
