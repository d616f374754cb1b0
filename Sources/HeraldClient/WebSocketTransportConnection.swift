import HTTPTypes
import Logging
import NIOCore
import NIOSSL
import NIOWebSocket
import Synchronization
import WSClient

/// Bayeux over one WebSocket (swift-websocket's `WebSocketClient`). Each server frame is one
/// batch; continuation frames are joined first.
final class WebSocketTransportConnection: HeraldTransportConnection {
    let connectionType = "websocket"
    var transport: HeraldClientConfiguration.Transport? { .websocket }
    let inbound: AsyncThrowingStream<ByteBuffer, any Error>
    private let writer: WebSocketOutboundWriter

    private init(writer: WebSocketOutboundWriter, inbound: AsyncThrowingStream<ByteBuffer, any Error>) {
        self.writer = writer
        self.inbound = inbound
    }

    func send(_ batch: ByteBuffer, isConnect: Bool) async throws {
        try await writer.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: batch)))
    }

    func close() async {
        try? await writer.close(.normalClosure, reason: nil)
    }

    /// Connects and upgrades; returns once the upgrade succeeded, throws if it did not.
    static func open(_ transport: NetworkTransport, logger: Logger) async throws -> WebSocketTransportConnection {
        var headers = HTTPFields()
        for (name, value) in transport.headers {
            guard let field = HTTPField.Name(name) else {
                throw HeraldClientError(.invalidURL, detail: "\(name) is not a valid header name")
            }
            headers.append(HTTPField(name: field, value: value))
        }
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: transport.configuration.maximumMessageBytes,
            additionalHeaders: headers,
            closeTimeout: .seconds(2)
        )
        let (inbound, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        let maximumBytes = transport.configuration.maximumMessageBytes
        let ready = ReadySignal<WebSocketTransportConnection>()
        let url = transport.endpoint.webSocketURL
        let tls = transport.configuration.tls
        let group = transport.eventLoopGroup
        Task {
            do {
                try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: tls, eventLoopGroup: group, logger: logger) { frames, outbound, _ in
                    ready.resume(returning: WebSocketTransportConnection(writer: outbound, inbound: inbound))
                    var message: ByteBuffer?
                    for try await frame in frames {
                        switch frame.opcode {
                        case .text, .binary:
                            if frame.fin {
                                continuation.yield(frame.data)
                            } else {
                                message = frame.data
                            }
                        case .continuation:
                            var data = frame.data
                            message?.writeBuffer(&data)
                            if let whole = message, whole.readableBytes > maximumBytes {
                                throw HeraldClientError(.protocolViolation, detail: "a message over \(maximumBytes) bytes")
                            }
                            if frame.fin, let whole = message {
                                continuation.yield(whole)
                                message = nil
                            }
                        }
                    }
                }
                continuation.finish()
                ready.resume(throwing: HeraldClientError(.unreachable, detail: "\(url): the connection closed during the upgrade"))
            } catch {
                continuation.finish(throwing: error)
                ready.resume(throwing: error)
            }
        }
        return try await ready.value()
    }
}

/// A value that arrives once, from another task: the first `resume` wins.
final class ReadySignal<Value: Sendable>: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Value, any Error>?)
        case done(Result<Value, any Error>)
    }
    private let state = Mutex<State>(.waiting(nil))

    func resume(returning value: Value) { complete(.success(value)) }
    func resume(throwing error: any Error) { complete(.failure(error)) }

    private func complete(_ result: Result<Value, any Error>) {
        let waiter: CheckedContinuation<Value, any Error>? = state.withLock { state in
            guard case .waiting(let waiter) = state else { return nil }
            state = .done(result)
            return waiter
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> Value {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Value, any Error>) in
            let done: Result<Value, any Error>? = state.withLock { state in
                switch state {
                case .waiting:
                    state = .waiting(waiter)
                    return nil
                case .done(let result):
                    return result
                }
            }
            if let done { waiter.resume(with: done) }
        }
    }
}
