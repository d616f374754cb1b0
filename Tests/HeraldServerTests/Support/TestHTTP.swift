import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

enum TestHTTPError: Error, Sendable, CustomStringConvertible {
    case timeout(Duration)
    case connectionClosedBeforeResponse(String)
    case notJSONArrayOfObjects(String)

    var description: String {
        switch self {
        case .timeout(let d): "TestHTTPError.timeout(\(d))"
        case .connectionClosedBeforeResponse(let why): "TestHTTPError.connectionClosedBeforeResponse(\(why))"
        case .notJSONArrayOfObjects(let text): "TestHTTPError.notJSONArrayOfObjects(\(text.prefix(200)))"
        }
    }
}

struct TestHTTPResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    var text: String { String(decoding: self.body, as: UTF8.self) }

    /// First value of the header `name`, case-insensitive.
    func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return self.headers.first { $0.0.lowercased() == lower }?.1
    }

    /// All values of the header `name`, case-insensitive.
    func headers(_ name: String) -> [String] {
        let lower = name.lowercased()
        return self.headers.filter { $0.0.lowercased() == lower }.map(\.1)
    }

    /// Body as a JSON array of objects (the Bayeux envelope shape); throws otherwise.
    func json() throws -> [[String: Any]] {
        do {
            return try TestWebSocket.parseJSONArrayOfObjects(self.text)
        } catch {
            throw TestHTTPError.notJSONArrayOfObjects(self.text)
        }
    }
}

/// One-shot HTTP/1.1 client: one TCP connection per request, `Connection: close`.
enum TestHTTP {
    static func request(
        _ method: String,
        host: String = "127.0.0.1",
        port: Int,
        path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil,
        timeout: Duration = .seconds(10),
        on group: any EventLoopGroup
    ) async throws -> TestHTTPResponse {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(timeout))
            .connect(host: host, port: port)
            .get()

        let response: EventLoopFuture<TestHTTPResponse> = channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: TestHTTPResponse.self)
            do {
                let sync = channel.pipeline.syncOperations
                try sync.addHTTPClientHandlers()
                try sync.addHandler(ResponseCollector(promise: promise))
            } catch {
                promise.fail(error)
                return promise.futureResult
            }

            var requestHeaders = HTTPHeaders()
            var hasHost = false
            var hasLength = false
            for (name, value) in headers {
                if name.lowercased() == "host" { hasHost = true }
                if name.lowercased() == "content-length" || name.lowercased() == "transfer-encoding" {
                    hasLength = true
                }
                requestHeaders.add(name: name, value: value)
            }
            if !hasHost { requestHeaders.add(name: "Host", value: "\(host):\(port)") }
            if !hasLength, body != nil || ["POST", "PUT", "PATCH"].contains(method.uppercased()) {
                requestHeaders.add(name: "Content-Length", value: "\(body?.count ?? 0)")
            }
            requestHeaders.replaceOrAdd(name: "Connection", value: "close")

            let head = HTTPRequestHead(
                version: .http1_1,
                method: HTTPMethod(rawValue: method),
                uri: path,
                headers: requestHeaders
            )
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body, !body.isEmpty {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }

            let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                promise.fail(TestHTTPError.timeout(timeout))
            }
            promise.futureResult.whenComplete { _ in
                timer.cancel()
                channel.close(promise: nil)
            }
            return promise.futureResult
        }
        return try await response.get()
    }

    /// POST a JSON body (Content-Type: application/json).
    static func postJSON(
        _ json: String,
        port: Int,
        path: String = "/bayeux",
        headers: [(String, String)] = [],
        timeout: Duration = .seconds(10),
        on group: any EventLoopGroup
    ) async throws -> TestHTTPResponse {
        try await self.request(
            "POST",
            port: port,
            path: path,
            headers: [("Content-Type", "application/json")] + headers,
            body: Array(json.utf8),
            timeout: timeout,
            on: group
        )
    }
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<TestHTTPResponse>
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    init(promise: EventLoopPromise<TestHTTPResponse>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            // Skip interim 1xx responses.
            if head.status.code >= 100, head.status.code < 200 { return }
            self.head = head
        case .body(var buffer):
            self.body.writeBuffer(&buffer)
        case .end:
            guard let head = self.head else { return }
            self.promise.succeed(
                TestHTTPResponse(
                    status: Int(head.status.code),
                    headers: head.headers.map { ($0.name, $0.value) },
                    body: Array(self.body.readableBytesView)
                )
            )
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(TestHTTPError.connectionClosedBeforeResponse(self.head == nil ? "no response head" : "truncated body"))
        context.fireChannelInactive()
    }
}
