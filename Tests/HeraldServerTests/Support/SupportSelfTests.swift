import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing

/// Proves the test clients work, against tiny in-process NIO servers on 127.0.0.1.
@Suite("SupportSelfTests")
struct SupportSelfTests {
    let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    @Test func httpPostRoundTrip() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }

        let response = try await TestHTTP.postJSON(#"[{"channel":"/meta/handshake"}]"#, port: server.port, on: self.group)
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/plain")
        #expect(response.header("CONNECTION")?.lowercased() == "close")
        #expect(response.text == "POST /bayeux\n[{\"channel\":\"/meta/handshake\"}]")

        let get = try await TestHTTP.request("GET", port: server.port, path: "/x?y=1", on: self.group)
        #expect(get.text == "GET /x?y=1\n")
    }

    @Test func httpResponseJSON() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }
        let response = try await TestHTTP.request("POST", port: server.port, path: "/json", body: Array(#"[{"a":1},{"b":"x"}]"#.utf8), on: self.group)
        let json = try response.json()
        #expect(json.count == 2)
        #expect(json[0]["a"] as? Int == 1)
        #expect(json[1]["b"] as? String == "x")
    }

    @Test func rawTCPHandMadeRequest() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }
        let tcp = try await RawTCP.connect(port: server.port, on: self.group)
        try await tcp.write("POST /raw HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        let bytes = try await tcp.readAll(until: .seconds(2))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.hasSuffix("\r\n\r\nPOST /raw\nabc"))
        #expect(tcp.sawEOF)
        #expect(try await tcp.read(timeout: .milliseconds(100)) == nil)
        await tcp.close()
    }

    @Test func webSocketSendReceive() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }
        let ws = try await TestWebSocket.connect(port: server.port, on: self.group)
        try await ws.send(#"[{"channel":"/meta/connect"}]"#)
        let json = try await ws.receiveJSON()
        #expect(json.first?["channel"] as? String == "/meta/connect")

        // A timeout must not poison the connection.
        await #expect(throws: TestWebSocketError.self) {
            _ = try await ws.receive(timeout: .milliseconds(50))
        }
        try await ws.send("hello")
        #expect(try await ws.receive() == "hello")

        // Server ping is answered with a pong carrying the same payload.
        try await ws.send("ping-me")
        #expect(try await ws.receive() == "pong:abc")

        await ws.close()
        #expect(ws.isClosed)
        await ws.close()  // idempotent
    }

    @Test func webSocketFragmentedMessageIsReassembled() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }
        let ws = try await TestWebSocket.connect(port: server.port, on: self.group)
        try await ws.send("fragmented")
        #expect(try await ws.receive() == "fragmented")
        // Our own fragmented frames reach the server intact, too.
        try await ws.send(frame: WebSocketFrame(fin: false, opcode: .text, data: ByteBuffer(string: "ab")))
        try await ws.send(frame: WebSocketFrame(fin: true, opcode: .continuation, data: ByteBuffer(string: "cd")))
        #expect(try await ws.receive() == "abcd")
        await ws.close()
    }

    @Test func webSocketWaitForClose() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }
        let ws = try await TestWebSocket.connect(port: server.port, on: self.group)
        try await ws.send("echo-before-close")
        try await ws.send("close-me")
        #expect(try await ws.waitForClose() == .policyViolation)
        // Afterwards receive reports the same close.
        do {
            _ = try await ws.receive(timeout: .milliseconds(200))
            Issue.record("expected .closed")
        } catch TestWebSocketError.closed(let code, let reason) {
            #expect(code == .policyViolation)
            #expect(reason == "bye")
        }
        await ws.close()
    }

    @Test func webSocketTCPDropAndRawTCPManualRead() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }
        let ws = try await TestWebSocket.connect(port: server.port, on: self.group)
        try await ws.send("drop-me")
        #expect(try await ws.waitForClose() == nil)
        #expect(ws.isClosed)

        let tcp = try await RawTCP.connect(port: server.port, autoRead: false, receiveBufferSize: 4096, on: self.group)
        try await tcp.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try await tcp.read(timeout: .seconds(2))
        #expect(first.map { String(decoding: $0, as: UTF8.self).hasPrefix("HTTP/1.1 200") } == true)
        await tcp.close()
    }

    @Test func webSocketRawBytesAndUpgradeFailure() async throws {
        let server = try await SelfTestServer.start(on: self.group)
        defer { server.stop() }

        // Hand-framed masked text frame "hi" (FIN|text, MASK|len 2, key 1 2 3 4).
        let ws = try await TestWebSocket.connect(port: server.port, on: self.group)
        try await ws.sendRaw([0x81, 0x82, 1, 2, 3, 4, UInt8(ascii: "h") ^ 1, UInt8(ascii: "i") ^ 2])
        #expect(try await ws.receive() == "hi")
        await ws.close()

        do {
            _ = try await TestWebSocket.connect(port: server.port, path: "/nope", on: self.group)
            Issue.record("expected upgrade failure")
        } catch TestWebSocketError.upgradeFailed(let status, _, let body) {
            #expect(status == 403)
            #expect(body.hasPrefix("GET /nope"))
        }
    }
}

// MARK: - In-test servers

/// HTTP echo ("METHOD URI\nBODY", then close) plus WebSocket echo on any path but `/nope`.
private final class SelfTestServer: Sendable {
    let channel: any Channel
    var port: Int { self.channel.localAddress!.port! }

    private init(channel: any Channel) { self.channel = channel }

    static func start(on group: any EventLoopGroup) async throws -> SelfTestServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketServerUpgrader(
                        automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(head.uri == "/nope" ? nil : HTTPHeaders())
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(EchoWebSocketHandler())
                            }
                        }
                    )
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                _ = context.pipeline.syncOperations.removeHandler(name: "echo-http")
                            }
                        )
                    )
                    try sync.addHandler(EchoHTTPHandler(), name: "echo-http")
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return SelfTestServer(channel: channel)
    }

    func stop() {
        self.channel.close(promise: nil)
    }
}

private final class EchoHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body.clear()
        case .body(var buffer):
            self.body.writeBuffer(&buffer)
        case .end:
            guard let head = self.head else { return }
            let isJSON = head.uri == "/json"
            var out = ByteBuffer()
            if isJSON {
                out.writeImmutableBuffer(self.body)
            } else {
                out.writeString("\(head.method.rawValue) \(head.uri)\n")
                out.writeImmutableBuffer(self.body)
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: isJSON ? "application/json" : "text/plain")
            headers.add(name: "Content-Length", value: "\(out.readableBytes)")
            headers.add(name: "Connection", value: "close")
            // The WebSocket server refuses "/nope" with 403; everything else is 200.
            let status: HTTPResponseStatus = head.uri == "/nope" ? .forbidden : .ok
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(out))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}

private final class EchoWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private var closeSent = false
    private var partial: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            if frame.fin {
                self.handleText(context, String(buffer: frame.unmaskedData))
            } else {
                self.partial = frame.unmaskedData
            }
        case .continuation:
            var data = frame.unmaskedData
            self.partial?.writeBuffer(&data)
            if frame.fin, let whole = self.partial {
                self.partial = nil
                self.handleText(context, String(buffer: whole))
            }
        case .pong:
            // Report only the pong for "ping-me" (the pong for the interleaved ping is just dropped).
            let payload = String(buffer: frame.unmaskedData)
            if payload == "abc" { self.send(context, .text, "pong:" + payload) }
        case .connectionClose:
            let channel = context.channel
            if self.closeSent {
                context.close(promise: nil)
            } else {
                self.closeSent = true
                let echo = WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)
                context.writeAndFlush(Self.wrapOutboundOut(echo)).whenComplete { _ in channel.close(promise: nil) }
            }
        default:
            break
        }
    }

    private func handleText(_ context: ChannelHandlerContext, _ text: String) {
        switch text {
        case "fragmented":
            self.send(context, .text, "frag", fin: false)
            self.send(context, .ping, "interleaved")
            self.send(context, .continuation, "mented")
        case "drop-me":
            context.close(promise: nil)
        case "ping-me":
            self.send(context, .ping, "abc")
        case "close-me":
            self.closeSent = true
            var payload = ByteBuffer()
            payload.write(webSocketErrorCode: .policyViolation)
            payload.writeString("bye")
            context.writeAndFlush(
                Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)),
                promise: nil
            )
        default:
            self.send(context, .text, text)
        }
    }

    private func send(_ context: ChannelHandlerContext, _ opcode: WebSocketOpcode, _ text: String, fin: Bool = true) {
        let frame = WebSocketFrame(fin: fin, opcode: opcode, data: context.channel.allocator.buffer(string: text))
        context.writeAndFlush(Self.wrapOutboundOut(frame), promise: nil)
    }
}
