import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

enum TestWebSocketError: Error, Sendable, CustomStringConvertible {
    /// No message within the timeout.
    case timeout
    /// The connection is closed. `code` is nil when TCP closed without a close frame.
    case closed(code: WebSocketErrorCode?, reason: String)
    /// The server answered the upgrade request with something other than 101.
    case upgradeFailed(status: Int, headers: [(String, String)], body: String)
    /// The upgrade handshake failed for another reason (bad accept key, EOF, ...).
    case handshakeFailed(String)
    /// The server sent a binary message where text was expected.
    case unexpectedBinary([UInt8])
    /// The server violated the framing protocol (bad fragment sequence, bad UTF-8, ...).
    case protocolViolation(String)
    /// `receiveJSON` got something that is not a JSON array of objects.
    case notJSONArrayOfObjects(String)

    var description: String {
        switch self {
        case .timeout: "TestWebSocketError.timeout"
        case .closed(let code, let reason): "TestWebSocketError.closed(code: \(code.map { "\($0)" } ?? "nil"), reason: \"\(reason)\")"
        case .upgradeFailed(let status, _, let body): "TestWebSocketError.upgradeFailed(status: \(status), body: \"\(body.prefix(200))\")"
        case .handshakeFailed(let why): "TestWebSocketError.handshakeFailed(\(why))"
        case .unexpectedBinary(let bytes): "TestWebSocketError.unexpectedBinary(\(bytes.count) bytes)"
        case .protocolViolation(let why): "TestWebSocketError.protocolViolation(\(why))"
        case .notJSONArrayOfObjects(let text): "TestWebSocketError.notJSONArrayOfObjects(\(text.prefix(200)))"
        }
    }
}

/// A minimal RFC 6455 client for live tests. Not for production use.
///
/// Reassembles fragmented messages, answers pings automatically, masks every frame it sends,
/// and records the server's close code. Receives must not be issued concurrently.
final class TestWebSocket: Sendable {
    /// Events produced by the channel handler.
    enum Event: Sendable {
        case text(String)
        case binary([UInt8])
        // terminal events
        case closeFrame(code: WebSocketErrorCode?, reason: String)
        case eof
        case failure(any Error)
    }

    private let channel: any Channel
    private let mailbox: TestMailbox<Event>
    private let flags: Flags

    /// State shared between the async API and the event-loop handler.
    final class Flags: Sendable {
        let closeSent = Atomic<Bool>(false)
        let closeCalled = Atomic<Bool>(false)
    }

    /// The headers of the server's `101` response.
    let upgradeHeaders: HTTPHeaders

    private init(channel: any Channel, mailbox: TestMailbox<Event>, flags: Flags, upgradeHeaders: HTTPHeaders) {
        self.channel = channel
        self.mailbox = mailbox
        self.flags = flags
        self.upgradeHeaders = upgradeHeaders
    }

    /// Written on the event loop before the upgrade's promise succeeds, read after it.
    private final class HeaderBox: @unchecked Sendable {
        var headers = HTTPHeaders()
    }

    /// True once `close()` was called or the underlying TCP connection is gone.
    var isClosed: Bool {
        self.flags.closeCalled.load(ordering: .relaxed) || !self.channel.isActive
    }

    // MARK: - Connect

    static func connect(
        host: String = "127.0.0.1",
        port: Int,
        path: String = "/bayeux",
        headers: [(String, String)] = [],
        maxFrameSize: Int = 1 << 24,
        timeout: Duration = .seconds(10),
        on group: any EventLoopGroup
    ) async throws -> TestWebSocket {
        let mailbox = TestMailbox<Event>()
        let flags = Flags()
        let handshakeName = "herald-test-ws-handshake"
        let responseHeaders = HeaderBox()

        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        let channel = try await bootstrap.connect(host: host, port: port).get()

        let upgraded: EventLoopFuture<Void> = channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            let upgrader = NIOWebSocketClientUpgrader(
                maxFrameSize: maxFrameSize,
                automaticErrorHandling: false,
                upgradePipelineHandler: { channel, response in
                    responseHeaders.headers = response.headers
                    return channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        _ = sync.removeHandler(name: handshakeName)
                        try sync.addHandler(TestWebSocketHandler(mailbox: mailbox, flags: flags))
                        promise.succeed(())
                    }
                }
            )
            do {
                let sync = channel.pipeline.syncOperations
                try sync.addHTTPClientHandlers(
                    leftOverBytesStrategy: .forwardBytes,
                    withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                )
                try sync.addHandler(HandshakeFailureHandler(promise: promise), name: handshakeName)
            } catch {
                promise.fail(error)
                return promise.futureResult
            }

            var requestHeaders = HTTPHeaders()
            requestHeaders.add(name: "Host", value: "\(host):\(port)")
            for (name, value) in headers {
                requestHeaders.add(name: name, value: value)
            }
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: requestHeaders)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }

            let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                promise.fail(TestWebSocketError.handshakeFailed("no upgrade response within \(timeout)"))
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            return promise.futureResult
        }

        do {
            try await upgraded.get()
        } catch {
            try? await channel.close().get()
            throw error
        }
        return TestWebSocket(channel: channel, mailbox: mailbox, flags: flags, upgradeHeaders: responseHeaders.headers)
    }

    // MARK: - Sending

    /// Send one masked text frame.
    func send(_ text: String) async throws {
        try await self.send(frame: WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)))
    }

    /// Send an arbitrary frame. The caller sets fin/opcode/rsv bits; a random mask key is applied
    /// unless the frame already carries one or `masked` is false (for "unmasked client frame" tests).
    func send(frame: WebSocketFrame, masked: Bool = true) async throws {
        var frame = frame
        if masked {
            if frame.maskKey == nil { frame.maskKey = .random() }
        } else {
            frame.maskKey = nil
        }
        if frame.opcode == .connectionClose {
            self.flags.closeSent.store(true, ordering: .relaxed)
        }
        try await self.channel.writeAndFlush(frame).get()
    }

    /// Write bytes straight onto the socket, bypassing the frame encoder (for malformed framing).
    func sendRaw(_ bytes: [UInt8]) async throws {
        let channel = self.channel
        try await channel.eventLoop.flatSubmit {
            do {
                let context = try channel.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
                let promise = channel.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: promise)
                return promise.futureResult
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }

    // MARK: - Receiving

    /// Next complete text message. Pings are answered and pongs skipped automatically.
    func receive(timeout: Duration = .seconds(5)) async throws -> String {
        switch try await self.nextEvent(timeout: timeout) {
        case .text(let text):
            return text
        case .binary(let bytes):
            throw TestWebSocketError.unexpectedBinary(bytes)
        case .closeFrame(let code, let reason):
            throw TestWebSocketError.closed(code: code, reason: reason)
        case .eof:
            throw TestWebSocketError.closed(code: nil, reason: "connection closed without close frame")
        case .failure(let error):
            throw error
        }
    }

    /// Next text message parsed as a JSON array of objects (the Bayeux envelope shape).
    func receiveJSON(timeout: Duration = .seconds(5)) async throws -> [[String: Any]] {
        let text = try await self.receive(timeout: timeout)
        return try Self.parseJSONArrayOfObjects(text)
    }

    /// The close frame's code and reason, skipping messages; nil at EOF without one.
    func waitForCloseFrame(timeout: Duration = .seconds(5)) async throws -> (code: WebSocketErrorCode?, reason: String)? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            switch try await self.nextEvent(timeout: max(ContinuousClock.now.duration(to: deadline), .zero)) {
            case .text, .binary: continue
            case .closeFrame(let code, let reason): return (code, reason)
            case .eof: return nil
            case .failure(let error):
                if error is IOError { return nil }
                throw error
            }
        }
    }

    /// Consume (and discard) messages until the server's close frame or the TCP close.
    /// Returns the close code, `.unknown(1005)` for a close frame without a body, nil for TCP close
    /// without a close frame (including connection reset).
    @discardableResult
    func waitForClose(timeout: Duration = .seconds(5)) async throws -> WebSocketErrorCode? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            let event = try await self.nextEvent(timeout: max(remaining, .zero))
            switch event {
            case .text, .binary:
                continue
            case .closeFrame(let code, _):
                return code
            case .eof:
                return nil
            case .failure(let error):
                if error is IOError { return nil }
                throw error
            }
        }
    }

    /// Send close 1000 (if not yet sent), give the server a moment to answer, then close the socket.
    /// Idempotent.
    func close() async {
        guard !self.flags.closeCalled.exchange(true, ordering: .relaxed) else { return }
        if self.channel.isActive, !self.flags.closeSent.exchange(true, ordering: .relaxed) {
            var payload = ByteBuffer()
            payload.write(webSocketErrorCode: .normalClosure)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
            if (try? await self.channel.writeAndFlush(frame).get()) != nil {
                // Wait briefly for the server's close reply (the handler closes the channel on it).
                let loop = self.channel.eventLoop
                let done = loop.makePromise(of: Void.self)
                self.channel.closeFuture.whenComplete { _ in done.succeed(()) }
                let timer = loop.scheduleTask(in: .milliseconds(500)) { done.succeed(()) }
                try? await done.futureResult.get()
                timer.cancel()
            }
        }
        try? await self.channel.close().get()
    }

    // MARK: - Helpers

    private func nextEvent(timeout: Duration) async throws -> Event {
        do {
            return try await self.mailbox.next(timeout: timeout, scheduler: self.channel.eventLoop)
        } catch TestMailboxError.timeout {
            throw TestWebSocketError.timeout
        }
    }

    static func parseJSONArrayOfObjects(_ text: String) throws -> [[String: Any]] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw TestWebSocketError.notJSONArrayOfObjects(text)
        }
        guard let array = object as? [Any] else { throw TestWebSocketError.notJSONArrayOfObjects(text) }
        var result: [[String: Any]] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let dict = element as? [String: Any] else { throw TestWebSocketError.notJSONArrayOfObjects(text) }
            result.append(dict)
        }
        return result
    }
}

// MARK: - Channel handlers (event-loop confined)

/// Sits behind the HTTP client handlers; only sees a response if the upgrade did NOT happen.
private final class HandshakeFailureHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<Void>
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private var firstError: (any Error)?

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(var buffer):
            self.body.writeBuffer(&buffer)
        case .end:
            self.failWithResponse()
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.firstError == nil { self.firstError = error }
        if self.head == nil {
            self.promise.fail(TestWebSocketError.handshakeFailed("\(error)"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.head != nil {
            self.failWithResponse()
        } else {
            let why = self.firstError.map { "\($0)" } ?? "connection closed before upgrade response"
            self.promise.fail(TestWebSocketError.handshakeFailed(why))
        }
        context.fireChannelInactive()
    }

    private func failWithResponse() {
        guard let head = self.head else { return }
        if head.status == .switchingProtocols {
            // 101 but the upgrader refused it (bad Sec-WebSocket-Accept, wrong Upgrade header, ...).
            let why = self.firstError.map { "\($0)" } ?? "101 response rejected"
            self.promise.fail(TestWebSocketError.handshakeFailed(why))
            return
        }
        self.promise.fail(
            TestWebSocketError.upgradeFailed(
                status: Int(head.status.code),
                headers: head.headers.map { ($0.name, $0.value) },
                body: String(buffer: self.body)
            )
        )
    }
}

/// Reassembles messages, answers pings, handles the closing handshake.
private final class TestWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let mailbox: TestMailbox<TestWebSocket.Event>
    private let flags: TestWebSocket.Flags
    private var fragmentOpcode: WebSocketOpcode?
    private var fragmentBuffer = ByteBuffer()
    private var done = false

    init(mailbox: TestMailbox<TestWebSocket.Event>, flags: TestWebSocket.Flags) {
        self.mailbox = mailbox
        self.flags = flags
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.done else { return }
        let frame = Self.unwrapInboundIn(data)
        var payload = frame.unmaskedData

        switch frame.opcode {
        case .text, .binary:
            guard self.fragmentOpcode == nil else {
                return self.violation(context, "new data frame while a fragmented message is in progress")
            }
            if frame.fin {
                self.deliver(context, opcode: frame.opcode, payload: payload)
            } else {
                self.fragmentOpcode = frame.opcode
                self.fragmentBuffer.clear()
                self.fragmentBuffer.writeBuffer(&payload)
            }
        case .continuation:
            guard let opcode = self.fragmentOpcode else {
                return self.violation(context, "continuation frame without a started message")
            }
            self.fragmentBuffer.writeBuffer(&payload)
            if frame.fin {
                self.fragmentOpcode = nil
                let message = self.fragmentBuffer
                self.fragmentBuffer = ByteBuffer()
                self.deliver(context, opcode: opcode, payload: message)
            }
        case .ping:
            guard frame.fin else { return self.violation(context, "fragmented ping") }
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: payload)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            var body = payload
            let code: WebSocketErrorCode?
            if body.readableBytes >= 2 {
                code = body.readWebSocketErrorCode()
            } else {
                code = .unknown(1005)
            }
            let reason = body.readString(length: body.readableBytes) ?? ""
            self.done = true
            self.mailbox.finish(.closeFrame(code: code, reason: reason))
            if !self.flags.closeSent.exchange(true, ordering: .relaxed) {
                var reply = ByteBuffer()
                if payload.readableBytes >= 2, let code {
                    reply.write(webSocketErrorCode: code)
                }
                let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reply)
                let channel = context.channel
                context.writeAndFlush(Self.wrapOutboundOut(frame)).whenComplete { _ in
                    channel.close(promise: nil)
                }
            } else {
                context.close(promise: nil)
            }
        default:
            self.violation(context, "unknown opcode \(frame.opcode)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !self.done {
            self.done = true
            self.mailbox.finish(.failure(error))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.done = true
        self.mailbox.finish(.eof)
        context.fireChannelInactive()
    }

    private func deliver(_ context: ChannelHandlerContext, opcode: WebSocketOpcode, payload: ByteBuffer) {
        if opcode == .text {
            let bytes = payload.readableBytesView
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return self.violation(context, "text message is not valid UTF-8")
            }
            self.mailbox.push(.text(text))
        } else {
            self.mailbox.push(.binary(Array(payload.readableBytesView)))
        }
    }

    private func violation(_ context: ChannelHandlerContext, _ why: String) {
        self.done = true
        self.mailbox.finish(.failure(TestWebSocketError.protocolViolation(why)))
        context.close(promise: nil)
    }
}
