import HTTPTypes
import Hummingbird

/// Checks the bearer token on every request but the probes (`/v1/health`, `/v1/ready`),
/// comparing in constant time. The token is never logged.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    static var openPaths: Set<String> { ["/v1/health", "/v1/ready"] }

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.openPaths.contains(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), token)
        else { throw AdminError.unauthorized }
        return try await next(request, context)
    }

    /// Whether `a` equals `b`, in a time that depends only on their lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// Turns Hummingbird's own errors (no such route, a body over the limit) and anything
/// unexpected into the API's JSON errors: every error body has the same shape, and no input
/// gets a 5xx with a stack of text.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AdminError {
            throw error
        } catch let error as HTTPError {
            switch error.status {
            case .notFound: throw AdminError.notFound("no such endpoint: \(request.method) \(request.uri.path)")
            case .contentTooLarge: throw AdminError(.contentTooLarge, code: "body_too_large", message: "request body too large")
            default: throw AdminError(error.status, code: "http_\(error.status.code)", message: error.body ?? error.status.reasonPhrase)
            }
        }
    }
}
