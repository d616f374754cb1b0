import HTTPTypes
import HeraldCore
import Hummingbird

/// Checks the bearer token on every request but the probes (`/v1/health`, `/v1/ready`) and
/// the dashboard's static files (whose data calls need it), comparing in constant time. The
/// token is never logged.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    static func isOpen(_ path: String) -> Bool { path == "/v1/health" || path == "/v1/ready" || Dashboard.paths.contains(path) }

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.isOpen(request.uri.path) { return try await next(request, context) }
        // RFC 7235: the scheme is case-insensitive.
        guard let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer ",
            ConstantTime.equal(Array(header.utf8.dropFirst(7)), token)
        else { throw AdminError.unauthorized }
        return try await next(request, context)
    }
}

/// Turns Hummingbird's own errors (no such route, a body over the limit) and anything
/// unexpected into the API's JSON errors: every error body has the same shape, and no input
/// gets a 5xx with a stack of text.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods a path serves, for 405 on any other (even ones the router has never heard
    /// of, such as `QUERY`); nil for paths that are not endpoints.
    let allowedMethods: @Sendable (String) -> String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AdminError {
            throw error
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                if let allow = allowedMethods(request.uri.path) { throw AdminError.methodNotAllowed(allow: allow) }
                throw AdminError.notFound("no such endpoint: \(request.method) \(request.uri.path)")
            case .contentTooLarge: throw AdminError(.contentTooLarge, code: "body_too_large", message: "request body too large")
            default: throw AdminError(error.status, code: "http_\(error.status.code)", message: error.body ?? error.status.reasonPhrase)
            }
        } catch let error as any HTTPResponseError {
            throw AdminError(error.status, code: "http_\(error.status.code)", message: error.status.reasonPhrase)
        } catch {
            // A bug, not the client's doing: still JSON, and nothing of the error's text.
            throw AdminError(.internalServerError, code: "internal", message: "internal error")
        }
    }
}

/// Without a token the admin API listens on loopback only, which a web page in the operator's
/// own browser can still reach: by a cross-site request (`fetch` with `no-cors` needs no
/// preflight), or as its own origin after DNS rebinding. So, without a token, a request must
/// name a loopback `Host`, carry no foreign `Origin`, and send JSON bodies as
/// `application/json` (which a cross-site form or simple request cannot).
struct LoopbackGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = request.head.authority ?? ""
        guard Self.isLoopbackAuthority(host) else {
            throw AdminError(.forbidden, code: "forbidden_host", message: "without a token the admin API answers requests for a loopback host only (got '\(host)')")
        }
        if let origin = request.headers[.origin], !(origin == "http://\(host)") {
            throw AdminError(.forbidden, code: "forbidden_origin", message: "cross-origin requests need a token")
        }
        return try await next(request, context)
    }

    /// `127.0.0.1:8081`, `localhost`, `[::1]:8081` and the like.
    static func isLoopbackAuthority(_ authority: String) -> Bool {
        var host = Substring(authority)
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return false }
            host = host[host.index(after: host.startIndex)..<end]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        return AdminConfiguration.isLoopback(String(host))
    }
}
