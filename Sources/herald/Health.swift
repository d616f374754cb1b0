import ArgumentParser
import Foundation
import HeraldConfiguration
import NIOCore
import NIOPosix
import NIOSSL

/// `herald health`: asks a running broker's admin API for `/v1/health` and exits 0 if it
/// answers 200, 1 otherwise. It reads the admin address as `herald serve` does (flags, then
/// `HERALD_ADMIN_HOST`/`HERALD_ADMIN_PORT`, then the defaults), so a container's
/// `HEALTHCHECK` needs no curl and no extra settings.
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that a running broker answers (exit 0) or not (exit 1).")

    @Option(name: .customLong("admin-host"), help: "Admin API address (default 127.0.0.1; env HERALD_ADMIN_HOST); 0.0.0.0 and :: mean this machine.")
    var adminHost: String?
    @Option(name: .customLong("admin-port"), help: "Admin API port (default 8081; env HERALD_ADMIN_PORT).")
    var adminPort: Int?
    @Option(name: .customLong("timeout-ms"), help: "How long to wait for the answer, ms (default 2000).")
    var timeoutMilliseconds: Int = 2000

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        // The port as `serve` resolves it. The host is given as loopback: /v1/health needs no
        // token, so the rule that a non-loopback admin host needs one does not apply here.
        let settings = try HeraldConfiguration(overrides: .init(adminHost: "127.0.0.1", adminPort: adminPort), environment: environment)
        var host = adminHost ?? environment["HERALD_ADMIN_HOST"] ?? "127.0.0.1"
        if host == "0.0.0.0" { host = "127.0.0.1" }
        if host == "::" || host == "[::]" { host = "::1" }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let status: Int?
        do {
            // With admin TLS (HERALD_TLS_CERT or HERALD_ADMIN_TLS_CERT, as for `serve`), over
            // https. The probe asks its own broker on a local address, so it does not verify
            // the chain: a CA-issued certificate's intermediate is not a trust anchor, and the
            // question is only whether the broker answers.
            let tls = try settings.adminTLS.map { _ in
                var configuration = TLSConfiguration.makeClientConfiguration()
                configuration.certificateVerification = .none
                return try NIOSSLContext(configuration: configuration)
            }
            status = try await Self.status(host: host, port: settings.admin.port, tls: tls, timeout: .milliseconds(Int64(timeoutMilliseconds)))
        } catch {
            FileHandle.standardError.write(Data("herald health: \(error)\n".utf8))
            status = nil
        }
        guard status == 200 else {
            FileHandle.standardError.write(Data("herald health: \(settings.adminTLS == nil ? "http" : "https")://\(host):\(settings.admin.port)/v1/health answered \(status.map(String.init) ?? "nothing")\n".utf8))
            throw ExitCode(1)
        }
        print("ok")
    }

    /// The status code of `GET /v1/health`, over an HTTP/1.1 connection (in TLS with `tls`).
    static func status(host: String, port: Int, tls: NIOSSLContext? = nil, timeout: TimeAmount) async throws -> Int? {
        let group = MultiThreadedEventLoopGroup.singleton
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await withThrowingTaskGroup(of: Int?.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
                    try await outbound.write(ByteBuffer(string: "GET /v1/health HTTP/1.1\r\nHost: \(authority)\r\nConnection: close\r\n\r\n"))
                    var response = ByteBuffer()
                    for try await var chunk in inbound {
                        response.writeBuffer(&chunk)
                        // "HTTP/1.1 200 OK\r\n…" (in a String, "\r\n" is one Character).
                        if let text = response.getString(at: 0, length: response.readableBytes), let end = text.firstIndex(where: \.isNewline) {
                            return text[..<end].split(separator: " ").dropFirst().first.flatMap { Int($0) }
                        }
                    }
                    return nil
                }
            }
            group.addTask {
                try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
