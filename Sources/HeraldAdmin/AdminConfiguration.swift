public import NIOSSL

/// Admin listener settings.
public struct AdminConfiguration: Sendable, CustomStringConvertible {
    /// Bind address. Without a `token`, only a loopback address is accepted
    /// (`isLoopback(_:)`): an admin API that reads and writes is never open to the network.
    public var host: String = "127.0.0.1"
    /// 0 picks a free port.
    public var port: Int = 8081
    /// The bearer token every request but `/v1/health` and `/v1/ready` must carry
    /// (`Authorization: Bearer …`). nil: no token, loopback only.
    public var token: String?
    /// Serve https with this configuration; nil serves plain http. `herald serve` makes it
    /// with `TLSCertificates.serverConfiguration()`, so that a reload reaches it too.
    public var tls: TLSConfiguration?
    /// Largest request body, in bytes; larger ones get 413.
    public var maxBodyBytes: Int = 1024 * 1024
    /// Most messages in one `POST /v1/publish` (a batch, or one message to many channels).
    public var maxMessagesPerPublish: Int = 1000
    /// Largest page of `GET /v1/clients`.
    public var maxPageSize: Int = 1000

    public init() {}

    /// Whether `host` names this machine's loopback interface only: `localhost`, `::1`, or an
    /// IPv4 literal in 127.0.0.0/8 (not a name that merely starts with `127.`).
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber) && Int(part)! <= 255
        }
    }

    /// The settings, with the token redacted: safe to log.
    public var description: String {
        "AdminConfiguration(host: \(host), port: \(port), token: \(token == nil ? "none" : "<redacted>"), tls: \(tls != nil), maxBodyBytes: \(maxBodyBytes))"
    }
}
