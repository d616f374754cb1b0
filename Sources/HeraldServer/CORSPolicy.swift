import NIOHTTP1

/// Cross-origin rules for browser clients on other origins (Faye's CORS transport, CometD's
/// credentialed XHR). A browser refuses `Access-Control-Allow-Origin: *` on credentialed
/// requests, so an allowed Origin is echoed, with `Access-Control-Allow-Credentials: true`.
struct CORSPolicy: Sendable {
    let allowsAny: Bool
    let origins: Set<String>

    init(allowedOrigins: [String]) {
        allowsAny = allowedOrigins.contains("*")
        origins = Set(allowedOrigins.map { $0.lowercased() })
    }

    /// Whether a request from `origin` to `host` (the Host header) is allowed: a listed origin,
    /// any origin with `*`, or the server's own origin.
    func allows(origin: String, host: String?) -> Bool {
        if allowsAny || origins.contains(origin.lowercased()) { return true }
        guard let host = host?.lowercased() else { return false }
        let o = origin.lowercased()
        return o == "http://" + host || o == "https://" + host
    }

    /// Headers for a response to a request from `origin` (nil when no Origin was sent).
    func headers(origin: String?, host: String?) -> [(String, String)] {
        guard let origin, allows(origin: origin, host: host) else { return [] }
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]
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
