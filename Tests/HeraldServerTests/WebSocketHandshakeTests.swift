import NIOCore
import NIOHTTP1
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

@Suite struct UpgradeSnifferTests {
    func head(_ text: String) -> HTTPRequestHead? {
        UpgradeSniffer.parseHead(ByteBuffer(string: text))
    }

    @Test func plainUpgradeHeadsAreParsed() throws {
        let parsed = try #require(head("GET /bayeux?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key:  a2V5MQ== \r\nSec-WebSocket-Version: 13\r\n\r\n"))
        #expect(parsed.uri == "/bayeux?x=1")
        #expect(parsed.headers.first(name: "sec-websocket-key") == "a2V5MQ==")
        #expect(WebSocketHandshake.accept(parsed) == .success(WebSocketHandshake.acceptValue(forKey: "a2V5MQ==")))
    }

    /// Anything unusual is left to NIO's HTTP decoder.
    @Test(arguments: [
        "GET /bayeux HTTP/1.0\r\nHost: h\r\n\r\n",
        "POST /bayeux HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /bayeux HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        "GET /bayeux HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
        "GET /bayeux HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /bayeux HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET /bayeux HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET /bayeux HTTP/1.1\r\nHost: h\u{7F}\r\n\r\n",
        "GET /bäyeux HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET  /bayeux HTTP/1.1\r\n\r\n",
        "GET bayeux HTTP/1.1\r\n\r\n",
    ])
    func unusualHeadsFallBack(_ text: String) {
        #expect(head(text) == nil)
    }

    @Test func endOfHead() {
        #expect(UpgradeSniffer.endOfHead(ByteBuffer(string: "GET / HTTP/1.1\r\n\r")) == nil)
        #expect(UpgradeSniffer.endOfHead(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\nrest")) == 18)
    }
}
