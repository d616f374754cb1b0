import HeraldProtocol
import NIOCore
import Testing

@Suite struct MessageCodecTests {
    func decode(_ text: String) throws(MessageCodec.DecodeError) -> [BayeuxMessage] {
        try MessageCodec.decodeBatch(ByteBuffer(string: text))
    }

    @Test func arrayAndSingleObject() throws {
        let batch = try decode(#"[{"channel":"/a","data":1},{"channel":"/b","data":2}]"#)
        #expect(batch.map(\.channel) == ["/a", "/b"])
        let single = try decode(#" {"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]} "#)
        #expect(single.count == 1)
        #expect(single[0].version == "1.0")
        #expect(single[0].supportedConnectionTypes == ["websocket"])
        #expect(try decode("[]").isEmpty)
    }

    @Test func dataKeepsThePublishersBytes() throws {
        let data = #"{ "b" : [1, 2.50, -0e+3], "a":"h\u00e9 \"q\"", "n": 12345678901234567890123, "z": null }"#
        let batch = try decode(#"[{"channel":"/x","id":"7","data":"# + data + #"}]"#)
        #expect(String(buffer: batch[0].data!) == data)
        #expect(batch[0].id == .string("7"))
    }

    @Test func idKeepsItsJSONType() throws {
        #expect(try decode(#"[{"channel":"/x","id":42}]"#)[0].id == .number("42"))
        #expect(try decode(#"[{"channel":"/x","id":"42"}]"#)[0].id == .string("42"))
        #expect(try decode(#"[{"channel":"/x","id":{}}]"#)[0].malformedField == "id")
    }

    @Test func subscriptionAndAdvice() throws {
        let m = try decode(#"[{"channel":"/meta/connect","clientId":"c","connectionType":"long-polling","advice":{"timeout":0},"ext":{"ack":1}}]"#)[0]
        #expect(m.adviceTimeoutMilliseconds == 0)
        #expect(m.ext?["ack"] == .number("1"))
        let s = try decode(#"[{"channel":"/meta/subscribe","subscription":["/a","/b/**"]}]"#)[0]
        #expect(s.subscription == .array([.string("/a"), .string("/b/**")]))
    }

    @Test func byteCountMeasuresEachMessage() throws {
        let first = #"{"channel":"/a","data":"xxxxxxxxxx"}"#
        let second = #"{"channel":"/b","data":1}"#
        let batch = try decode("[" + first + " , " + second + "]")
        #expect(batch[0].byteCount == first.utf8.count)
        #expect(batch[1].byteCount == second.utf8.count)
    }

    @Test(arguments: [
        "", "not json", "[", "[{", #"[{"channel":}]"#, #"[{"channel":"/a"}"#, #"[{"channel":"/a"}]x"#,
        #"[{"channel":"/a","data":tru}]"#, #"[{"channel":"/a","data":01}]"#, #"[{"channel":"/a","data":1.}]"#,
        #"[{"channel":"/a","data":"\x"}]"#, #"[{"channel":"/a","data":"\ud800"}]"#, "[{\"channel\":\"/a\",\"data\":\"\t\"}]",
        #"[{"channel":"/a",}]"#, #"[{"channel":"/a","data":[1,]}]"#, "[x", "[1", #"[{"channel":"/a"},x]"#,
    ])
    func invalidJSONIsRejected(_ text: String) {
        #expect(throws: MessageCodec.DecodeError.self) { try decode(text) }
        do {
            _ = try decode(text)
        } catch {
            if case .invalidJSON = error {} else { Issue.record("expected invalidJSON for \(text), got \(error)") }
        }
    }

    @Test(arguments: ["1", "\"x\"", "null", "[1]", "[[]]", #"[{"channel":"/a"},2]"#])
    func wrongShapeIsRejected(_ text: String) {
        do {
            _ = try decode(text)
            Issue.record("accepted \(text)")
        } catch {
            if case .wrongShape = error {} else { Issue.record("expected wrongShape for \(text), got \(error)") }
        }
    }

    @Test func invalidUTF8IsRejected() {
        for bytes: [UInt8] in [[0xC3, 0x28], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF5, 0x80, 0x80, 0x80], [0xE2, 0x82]] {
            var buffer = ByteBuffer(string: #"[{"channel":"/a","data":""#)
            buffer.writeBytes(bytes)
            buffer.writeString(#""}]"#)
            #expect(throws: MessageCodec.DecodeError.self) { try MessageCodec.decodeBatch(buffer) }
        }
        var ok = ByteBuffer(string: #"[{"channel":"/a","data":""#)
        ok.writeBytes([0xF0, 0x9F, 0x98, 0x80, 0xE2, 0x98, 0x83])
        ok.writeString(#""}]"#)
        #expect((try? MessageCodec.decodeBatch(ok))?.count == 1)
    }

    @Test func nestingDepthIsBounded() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: MessageCodec.DecodeError.self) { try decode(#"[{"channel":"/a","data":"# + deep + "}]") }
        let fine = String(repeating: "[", count: 50) + String(repeating: "]", count: 50)
        #expect((try? decode(#"[{"channel":"/a","data":"# + fine + "}]"))?.count == 1)
    }

    @Test func batchSizeIsBounded() {
        let many = "[" + Array(repeating: #"{"channel":"/a"}"#, count: 11).joined(separator: ",") + "]"
        #expect(throws: MessageCodec.DecodeError.tooManyMessages(limit: 10)) {
            _ = try MessageCodec.decodeBatch(ByteBuffer(string: many), maxMessages: 10)
        }
    }

    /// Decoding any prefix of a valid batch must fail cleanly (no crash, no partial result).
    @Test func everyTruncationFailsCleanly() {
        let text = #"[{"channel":"/a/b","id":"1","data":{"k":[1,2,{"x":"\u00e9"}],"t":true},"ext":{"a":null}}]"#
        let bytes = Array(text.utf8)
        for cut in 0..<bytes.count {
            var buffer = ByteBuffer()
            buffer.writeBytes(bytes[0..<cut])
            #expect(throws: MessageCodec.DecodeError.self) { try MessageCodec.decodeBatch(buffer) }
        }
        #expect((try? decode(text))?.count == 1)
    }

    @Test func writerEscapes() throws {
        var buffer = ByteBuffer()
        buffer.writeJSONString("a\"b\\c\n\u{01}\u{2028}é")
        #expect(String(buffer: buffer) == #""a\"b\\c\n\u0001\u2028é""#)
        #expect(try JSONParser.parse(String(buffer: buffer)) == .string("a\"b\\c\n\u{01}\u{2028}é"))
    }
}
