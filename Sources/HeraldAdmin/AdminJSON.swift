import HTTPTypes
import HeraldProtocol
import Hummingbird
import NIOCore

/// JSON bodies in and out, with Herald's own strict codec. A published `data` is validated and
/// written out again in compact form (its numbers keep their text).
enum AdminJSON {
    static func response(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var buffer = ByteBuffer()
        buffer.writeJSON(value)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: buffer))
    }

    /// The request body as a JSON object; 413 past `maxBytes`, 400 if it is not one.
    static func object(of request: Request, maxBytes: Int) async throws -> JSONObject {
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            throw AdminError(.unsupportedMediaType, code: "unsupported_media_type", message: "send the body as Content-Type: application/json")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBytes)
        } catch {
            throw AdminError(.contentTooLarge, code: "body_too_large", message: "request body larger than \(maxBytes) bytes")
        }
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
            throw AdminError.badRequest("body is not UTF-8")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(text)
        } catch {
            throw AdminError.badRequest("body is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else { throw AdminError.badRequest("body must be a JSON object") }
        return object
    }
}

extension JSONObject {
    /// An object from key-value pairs, leaving out nil values.
    static func compact(_ members: [(String, JSONValue?)]) -> JSONObject {
        JSONObject(members.compactMap { key, value in value.map { (key, $0) } })
    }
}
