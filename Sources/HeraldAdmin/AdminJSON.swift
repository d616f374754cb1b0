import HTTPTypes
import HeraldProtocol
import Hummingbird
import NIOCore

/// JSON bodies in and out, with Herald's own strict codec: a published `data` is validated and
/// passed on as the bytes it came in, as a client's publish is.
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
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBytes)
        } catch {
            throw AdminError(.contentTooLarge, code: "body_too_large", message: "request body larger than \(maxBytes) bytes")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(String(buffer: body))
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
