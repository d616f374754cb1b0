import NIOCore
import NIOHTTP1
@testable import HeraldServer
import Testing

@Suite struct WebSocketHandshakeTests {
    @Test func base64Padding() {
        #expect(WebSocketHandshake.base64(Array("f".utf8)) == "Zg==")
        #expect(WebSocketHandshake.base64(Array("fo".utf8)) == "Zm8=")
        #expect(WebSocketHandshake.base64(Array("foo".utf8)) == "Zm9v")
        #expect(WebSocketHandshake.base64(Array("foobar".utf8)) == "Zm9vYmFy")
    }

    /// RFC 6455 §1.3's example, and a second well-known pair.
    @Test(arguments: [
        ("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ("x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="),
    ])
    func acceptValueOfKnownKeys(key: String, accept: String) {
        #expect(WebSocketHandshake.acceptValue(forKey: key) == accept)
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
