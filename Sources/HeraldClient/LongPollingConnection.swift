import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Bayeux long-polling over HTTP/1.1: two keep-alive connections, one for the held
/// `/meta/connect` and one for everything else, so a publish never waits behind a held connect.
/// Each response body is one batch.
final class LongPollingConnection: HeraldTransportConnection {
    let connectionType = "long-polling"
    var transport: HeraldClientConfiguration.Transport? { .longPolling }
    let inbound: AsyncThrowingStream<ByteBuffer, any Error>
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let commands: HTTPLane
    private let connects: HTTPLane

    private init(_ transport: NetworkTransport) {
        (inbound, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        commands = HTTPLane(transport)
        connects = HTTPLane(transport)
    }

    static func open(_ transport: NetworkTransport, logger: Logger) async throws -> LongPollingConnection {
        let connection = LongPollingConnection(transport)
        do {
            try await connection.commands.open()
        } catch {
            throw HeraldClientError(.unreachable, detail: "\(transport.endpoint.hostForURL):\(transport.endpoint.port): \(error)")
        }
        return connection
    }

    func send(_ batch: ByteBuffer, isConnect: Bool) async throws {
        if isConnect {
            // Answered after the server's timeout: wait for it beside the other requests.
            Task {
                do {
                    continuation.yield(try await connects.post(batch, timeout: .seconds(120)))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        } else {
            do {
                continuation.yield(try await commands.post(batch, timeout: .seconds(60)))
            } catch {
                continuation.finish(throwing: error)
                throw error
            }
        }
    }

    func close() async {
        continuation.finish()
        await commands.close()
        await connects.close()
    }
}

/// One HTTP/1.1 keep-alive connection carrying POSTs one after another; reopened when the
/// server closed it between requests.
final class HTTPLane: Sendable {
    private let transport: NetworkTransport
    private let channel = Mutex<(any Channel)?>(nil)
    private let serverCloses = Flag()

    init(_ transport: NetworkTransport) { self.transport = transport }

    func open() async throws {
        _ = try await currentChannel()
    }

    private func currentChannel() async throws -> any Channel {
        if !serverCloses.isSet, let open = channel.withLock({ $0 }), open.isActive { return open }
        let endpoint = transport.endpoint
        let tls = endpoint.secure ? try NIOSSLContext(configuration: transport.configuration.tls ?? .makeClientConfiguration()) : nil
        let maximumBytes = transport.configuration.maximumMessageBytes
        let opened = try await ClientBootstrap(group: transport.eventLoopGroup)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let serverName = endpoint.host.first?.isNumber == true || endpoint.host.contains(":") ? nil : endpoint.host
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(maximumBytes: maximumBytes))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        channel.withLock { $0 = opened }
        return opened
    }

    /// The request never left: the connection had closed (servers such as Puma close a
    /// keep-alive connection after each response without saying so). Safe to send again.
    struct NotSent: Error {}

    /// POSTs `body` (a JSON batch) and returns the response body. Non-200 answers throw.
    func post(_ body: ByteBuffer, timeout: TimeAmount) async throws -> ByteBuffer {
        do {
            return try await postOnce(body, timeout: timeout)
        } catch is NotSent {
            // The server closes connections after a response (Puma does, without saying
            // `Connection: close`): from now on, one connection per request.
            serverCloses.set()
            channel.withLock { $0 = nil }
            return try await postOnce(body, timeout: timeout)
        }
    }

    private func postOnce(_ body: ByteBuffer, timeout: TimeAmount) async throws -> ByteBuffer {
        let channel = try await currentChannel()
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: transport.endpoint.hostHeader)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        for (name, value) in transport.headers { headers.add(name: name, value: value) }
        if let cookie = transport.cookies.header { headers.add(name: "Cookie", value: cookie) }
        if serverCloses.isSet { headers.add(name: "Connection", value: "close") }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: transport.endpoint.target, headers: headers)
        let promise = channel.eventLoop.makePromise(of: (HTTPResponseHead, ByteBuffer).self)
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(HeraldClientError(.timedOut, detail: "no HTTP response in \(timeout.nanoseconds / 1_000_000_000) s"))
            channel.close(promise: nil)
        }
        channel.pipeline.handler(type: ResponseCollector.self).whenComplete { result in
            switch result {
            case .success(let collector):
                collector.expect(promise)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
                // A channel that closed before the request went out never answers it.
                channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { _ in promise.fail(NotSent()) }
            case .failure:
                // The handler is gone only when the channel closed and its pipeline was torn
                // down (Puma closing a keep-alive connection between requests): nothing was
                // written, so it is safe to send again.
                promise.fail(NotSent())
            }
        }
        defer { timer.cancel() }
        let (response, payload) = try await promise.futureResult.get()
        for cookie in response.headers["Set-Cookie"] { transport.cookies.store(setCookie: cookie) }
        guard response.status == .ok else {
            throw HeraldClientError(.protocolViolation, detail: "HTTP \(response.status.code) \(response.status.reasonPhrase): \(String(buffer: payload).prefix(200))")
        }
        return payload
    }

    func close() async {
        let open = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await open?.close()
    }
}

/// Collects each response (head and whole body) for the request that is waiting for it, in
/// order. Lives on its channel's event loop.
final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let maximumBytes: Int
    private var waiting = CircularBuffer<EventLoopPromise<(HTTPResponseHead, ByteBuffer)>>()
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    init(maximumBytes: Int) { self.maximumBytes = maximumBytes }

    private var isClosed = false
    /// Responses completed on this connection, and whether the current one has begun.
    private var completed = 0
    private var responseBegan = false

    func expect(_ promise: EventLoopPromise<(HTTPResponseHead, ByteBuffer)>) {
        guard !isClosed else {
            promise.fail(HTTPLane.NotSent())
            return
        }
        waiting.append(promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            responseBegan = true
            self.head = head
            body.clear()
        case .body(var part):
            guard body.readableBytes + part.readableBytes <= maximumBytes else {
                failAll(HeraldClientError(.protocolViolation, detail: "a response over \(maximumBytes) bytes"))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
        case .end:
            if let head, let promise = waiting.popFirst() {
                promise.succeed((head, body))
            }
            completed += 1
            responseBegan = false
            head = nil
            body = ByteBuffer()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        if completed > 0, !responseBegan {
            // A reused connection closed before any byte of the answer: the server closed
            // it after its last response and never read this request (a stale keep-alive
            // connection, which HTTP clients such as curl send again).
            failAll(HTTPLane.NotSent())
        }
        failAll(HeraldClientError(.connectionClosed, detail: "the server closed the HTTP connection"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: any Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}
