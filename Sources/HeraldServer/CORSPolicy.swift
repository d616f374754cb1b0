import NIOHTTP1

/// Which browser origins may use the server: CORS for the HTTP transports and the `Origin`
/// check on WebSocket upgrades, which browsers send with the user's cookies and do not
/// subject to CORS (cross-site WebSocket hijacking).
///
/// - Always allowed: requests without an `Origin` (non-browser clients), the server's own
///   origin (`http(s)://` + the `Host` header), and loopback origins (`localhost`,
///   `127.0.0.1`, `[::1]`, any port, http or https), so that a page in development works.
/// - `ws://` and `wss://` origins, which no browser sends: non-browser WebSocket libraries
///   put the URL they connect to there (swift-websocket does). No credentials.
/// - Origins listed by name (`https://app.example`) are allowed **with credentials**: the
///   Origin is echoed with `Access-Control-Allow-Credentials: true`, which CometD's browser
///   client needs for its credentialed long-polling.
/// - `*` in the list allows every other origin too, without credentials
///   (`Access-Control-Allow-Origin: *`): a page on any site can read replies and open
///   WebSockets, but a browser sends no cookies on its cross-origin requests.
///
/// Loopback origins get no credentials either, unless listed by name.
struct CORSPolicy: Sendable {
    let allowsAny: Bool
    let origins: Set<String>

    /// What a request from some origin is granted.
    enum Access: Equatable {
        case denied
        /// CORS headers without credentials; `echo` is the `Access-Control-Allow-Origin` value.
        case anonymous(echo: String)
        /// The origin is echoed with `Access-Control-Allow-Credentials: true`.
        case credentialed
    }

    init(allowedOrigins: [String]) {
        allowsAny = allowedOrigins.contains("*")
        origins = Set(allowedOrigins.filter { $0 != "*" }.map { Self.normalized($0) })
    }

    /// Lowercased, without a trailing slash (`https://App.example/` is `https://app.example`).
    static func normalized(_ origin: String) -> String {
        var lowered = origin.lowercased()
        while lowered.hasSuffix("/") { lowered.removeLast() }
        return lowered
    }

    /// What a request from `origin` to `host` (its Host header) is granted.
    func access(origin: String, host: String?) -> Access {
        let o = Self.normalized(origin)
        if origins.contains(o) { return .credentialed }
        if let host = host?.lowercased(), o == "http://" + host || o == "https://" + host { return .credentialed }
        if Self.isLoopback(origin: o) { return .anonymous(echo: origin) }
        // No browser sends a ws:// or wss:// Origin (pages have http(s) or null origins):
        // it comes from a non-browser WebSocket library (swift-websocket's WSClient sends the
        // URL's), which could as well have sent none.
        if o.hasPrefix("ws://") || o.hasPrefix("wss://") { return .anonymous(echo: origin) }
        if allowsAny { return .anonymous(echo: "*") }
        return .denied
    }

    /// Whether a request from `origin` may be served at all (a WebSocket upgrade, a preflight).
    func allows(origin: String, host: String?) -> Bool {
        access(origin: origin, host: host) != .denied
    }

    /// `http(s)://localhost`, `127.0.0.1` or `[::1]`, with any port or none.
    static func isLoopback(origin: String) -> Bool {
        let rest: Substring
        if origin.hasPrefix("http://") {
            rest = origin.dropFirst(7)
        } else if origin.hasPrefix("https://") {
            rest = origin.dropFirst(8)
        } else {
            return false
        }
        for host in ["localhost", "127.0.0.1", "[::1]"] where rest.hasPrefix(host) {
            let port = rest.dropFirst(host.count)
            if port.isEmpty { return true }
            guard port.first == ":" else { return false }
            let digits = port.dropFirst()
            return !digits.isEmpty && digits.count <= 5 && digits.allSatisfy(\.isASCIIDigit)
        }
        return false
    }

    /// Headers for a response to a request from `origin` (nil when no Origin was sent).
    func headers(origin: String?, host: String?) -> [(String, String)] {
        guard let origin else { return [] }
        switch access(origin: origin, host: host) {
        case .denied:
            return []
        case .anonymous(let echo):
            return [("Access-Control-Allow-Origin", echo), ("Vary", "Origin")]
        case .credentialed:
            return [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
            ]
        }
    }

    func preflightHeaders(origin: String?, host: String?, requestedHeaders: String?) -> [(String, String)] {
        var headers = self.headers(origin: origin, host: host)
        guard !headers.isEmpty else { return [] }
        headers.append(("Access-Control-Allow-Methods", "POST, GET, OPTIONS"))
        headers.append(("Access-Control-Allow-Headers", requestedHeaders ?? "Accept, Authorization, Content-Type, Pragma, X-Requested-With"))
        headers.append(("Access-Control-Max-Age", "86400"))
        return headers
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
