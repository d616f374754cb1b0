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

    /// `base64(SHA-1(key + GUID))` (RFC 6455 §4.2.2, item 5.4).
    static func acceptValue(forKey key: String) -> String {
        var input = Array(key.utf8)
        input.append(contentsOf: "258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)
        return base64(sha1(input))
    }

    /// The `101 Switching Protocols` response, written as raw bytes.
    static func switchingProtocols(accept: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160)
        buffer.writeString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        buffer.writeString(accept)
        buffer.writeString("\r\n\r\n")
        return buffer
    }

    // MARK: SHA-1 (FIPS 180-4) and base64, for the accept value only

    static func sha1(_ message: [UInt8]) -> [UInt8] {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        var padded = message
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        let bits = UInt64(message.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) { padded.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let b = chunk + i * 4
                w[i] = UInt32(padded[b]) << 24 | UInt32(padded[b + 1]) << 16 | UInt32(padded[b + 2]) << 8 | UInt32(padded[b + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = (x << 1) | (x >> 31)
            }
            var (a, b, c, d, e) = h
            for i in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch i {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let t = ((a << 5) | (a >> 27)) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = (b << 30) | (b >> 2)
                b = a
                a = t
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }
        var digest: [UInt8] = []
        digest.reserveCapacity(20)
        for word in [h.0, h.1, h.2, h.3, h.4] {
            digest.append(contentsOf: [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)])
        }
        return digest
    }

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
