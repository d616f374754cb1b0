import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import WSClient

/// The transport behind a URL: WebSocket first, long-polling when the upgrade is refused.
///
/// Once an upgrade has been refused, later connections go straight to long-polling: a proxy
/// that refused it once will refuse it again (as CometD's client does).
struct NetworkTransport: HeraldTransport {
    struct Endpoint: Sendable {
        var secure: Bool
        var host: String
        var port: Int
        /// Path and query, at least "/".
        var target: String

        var webSocketURL: String { "\(secure ? "wss" : "ws")://\(hostForURL):\(port)\(target)" }
        var hostForURL: String { host.contains(":") ? "[\(host)]" : host }
        /// The `Host` header: the port only when it is not the scheme's default.
        var hostHeader: String { port == (secure ? 443 : 80) ? hostForURL : "\(hostForURL):\(port)" }
    }

    let endpoint: Endpoint
    let configuration: HeraldClientConfiguration
    let eventLoopGroup: any EventLoopGroup
    let cookies = CookieJar()
    let upgradeRefused = Flag()

    init(url: String, configuration: HeraldClientConfiguration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws(HeraldClientError) {
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host, !host.isEmpty else {
            throw HeraldClientError(.invalidURL, detail: "\(url) is not a URL with a host (ws://host:port/bayeux)")
        }
        let secure: Bool
        switch scheme {
        case "ws", "http": secure = false
        case "wss", "https": secure = true
        default: throw HeraldClientError(.invalidURL, detail: "\(url): the scheme must be ws, wss, http or https")
        }
        var target = parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath
        if let query = parsed.percentEncodedQuery { target += "?" + query }
        self.endpoint = Endpoint(secure: secure, host: host, port: parsed.port ?? (secure ? 443 : 80), target: target)
        guard !configuration.transports.isEmpty else {
            throw HeraldClientError(.invalidURL, detail: "the configuration allows no transport")
        }
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
    }

    /// The configured headers, with the token's `Authorization` unless one was given.
    var headers: [(name: String, value: String)] {
        var headers = configuration.headers
        if let token = configuration.token, !headers.contains(where: { $0.name.lowercased() == "authorization" }) {
            headers.append(("Authorization", "Bearer \(token)"))
        }
        return headers
    }

    func connect(logger: Logger) async throws -> any HeraldTransportConnection {
        let allowed = configuration.transports
        if allowed.contains(.websocket), !(upgradeRefused.isSet && allowed.contains(.longPolling)) {
            do {
                return try await WebSocketTransportConnection.open(self, logger: logger)
            } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed && allowed.contains(.longPolling) {
                logger.notice("WebSocket upgrade refused; using long-polling", metadata: ["herald.url": "\(endpoint.webSocketURL)"])
                upgradeRefused.set()
            } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed {
                throw HeraldClientError(.unreachable, detail: "the server refused the WebSocket upgrade, and long-polling is not allowed")
            } catch let error as HeraldClientError {
                throw error
            } catch {
                throw HeraldClientError(.unreachable, detail: "\(endpoint.webSocketURL): \(error)")
            }
        }
        return try await LongPollingConnection.open(self, logger: logger)
    }
}

/// Cookies the server set (`BAYEUX_BROWSER`, which binds a long-polling session to this
/// client), sent back on every request. Name and value only: one server, one path.
final class CookieJar: Sendable {
    private let cookies = Mutex<[(name: String, value: String)]>([])

    /// Takes the `name=value` of a `Set-Cookie` header.
    func store(setCookie header: String) {
        let pair = header.prefix { $0 != ";" }
        guard let equals = pair.firstIndex(of: "=") else { return }
        let name = pair[..<equals].trimmingCharacters(in: .whitespaces)
        let value = pair[pair.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { return }
        cookies.withLock { jar in
            jar.removeAll { $0.name == name }
            if !value.isEmpty { jar.append((name, value)) }
        }
    }

    /// The `Cookie` header, or nil when there is none.
    var header: String? {
        cookies.withLock { jar in jar.isEmpty ? nil : jar.map { "\($0.name)=\($0.value)" }.joined(separator: "; ") }
    }
}

/// A flag that is set once, from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
