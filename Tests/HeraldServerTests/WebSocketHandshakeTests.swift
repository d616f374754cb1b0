@testable import HeraldServer
import Testing

@Suite struct WebSocketHandshakeTests {
    /// FIPS 180-2 appendix A vectors, including a message that spans two blocks.
    @Test func sha1KnownAnswers() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
        #expect(hex(WebSocketHandshake.sha1(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(WebSocketHandshake.sha1([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex(WebSocketHandshake.sha1(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(hex(WebSocketHandshake.sha1([UInt8](repeating: UInt8(ascii: "a"), count: 1000))) == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    @Test func base64Padding() {
        #expect(WebSocketHandshake.base64(Array("f".utf8)) == "Zg==")
        #expect(WebSocketHandshake.base64(Array("fo".utf8)) == "Zm8=")
        #expect(WebSocketHandshake.base64(Array("foo".utf8)) == "Zm9v")
        #expect(WebSocketHandshake.base64(Array("foobar".utf8)) == "Zm9vYmFy")
    }

    /// RFC 6455 §1.3's example.
    @Test func acceptValueOfTheRFCExample() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}
