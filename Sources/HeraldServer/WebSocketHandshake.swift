import Crypto
import NIOCore
import NIOHTTP1

/// The server side of the WebSocket opening handshake (RFC 6455 §4.2), done by `HTTPHandler`
/// itself rather than by NIO's `HTTPServerUpgradeHandler`.
///
/// NIO's upgrade machinery costs a chain of futures, promises and handler swaps per
/// connection, and it only looks at a connection's first request (see `HeraldServer`). Herald
/// validates the request, answers `101` as raw bytes, and swaps the pipeline synchronously:
/// connection setup is the larger part of the `connections` benchmark.
enum WebSocketHandshake {
    /// Why an upgrade request was refused; each becomes a plain HTTP error response.
    enum Refusal: Error, Equatable {
        case missingKey
        case unsupportedVersion
        case notAnUpgrade
    }

    /// Checks an upgrade request (RFC 6455 §4.2.1) and returns the `Sec-WebSocket-Accept` value.
    static func accept(_ head: HTTPRequestHead) -> Result<String, Refusal> {
        guard head.method == .GET,
              head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" })
        else { return .failure(.notAnUpgrade) }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1, let key = keys.first, !key.isEmpty else { return .failure(.missingKey) }
        guard head.headers["sec-websocket-version"] == ["13"] else { return .failure(.unsupportedVersion) }
        return .success(acceptValue(forKey: key))
    }

    /// `base64(SHA-1(key + GUID))` (RFC 6455 §4.2.2, item 5.4). SHA-1 is broken for
    /// signatures but is what the RFC fixes here; it only proves the server read the key.
    /// swift-crypto's `Insecure.SHA1` (BoringSSL on Linux, CryptoKit on Apple platforms) rather
    /// than a hand-written one: a maintained, reviewed implementation instead of our own.
    static func acceptValue(forKey key: String) -> String {
        var input = Array(key.utf8)
        input.append(contentsOf: "258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)
        return base64(Array(Insecure.SHA1.hash(data: input)))
    }

    /// The `101 Switching Protocols` response, written as raw bytes.
    static func switchingProtocols(accept: String, setCookie: String? = nil, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160)
        buffer.writeString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        buffer.writeString(accept)
        if let setCookie {
            buffer.writeString("\r\nSet-Cookie: ")
            buffer.writeString(setCookie)
        }
        buffer.writeString("\r\n\r\n")
        return buffer
    }

    // MARK: base64, for the accept value only

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
