import HTTPTypes
import HeraldProtocol
public import Hummingbird

/// An admin API error, answered as `{"error": {"code": "…", "message": "…"}}` with its status.
/// Every failure the API reports is one of these; nothing a client sends yields a 5xx.
public struct AdminError: HTTPResponseError, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    /// Machine-readable, stable: `unauthorized`, `not_found`, `bad_request`, …
    public let code: String
    public let message: String
    var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        if status == .unauthorized { fields[.wwwAuthenticate] = #"Bearer realm="herald-admin""# }
        return AdminJSON.response(
            .object(JSONObject([("error", .object(JSONObject([("code", .string(code)), ("message", .string(message))])))])),
            status: status,
            headers: fields
        )
    }

    static func badRequest(_ message: String) -> AdminError { AdminError(.badRequest, code: "bad_request", message: message) }
    static func notFound(_ message: String) -> AdminError { AdminError(.notFound, code: "not_found", message: message) }
    static let unauthorized = AdminError(.unauthorized, code: "unauthorized", message: "a valid bearer token is required (Authorization: Bearer <token>)")

    static func methodNotAllowed(allow: String) -> AdminError {
        var error = AdminError(.methodNotAllowed, code: "method_not_allowed", message: "allowed: \(allow)")
        error.headers[.allow] = allow
        return error
    }
}
