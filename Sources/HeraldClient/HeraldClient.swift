public import Foundation
public import HeraldProtocol
public import Logging
public import NIOCore
public import ServiceLifecycle

/// A Bayeux client for Herald, and for any Bayeux server (Faye, CometD): async/await
/// subscriptions and publishes over WebSocket, with long-polling as the fallback, that
/// reconnect and resume by themselves.
///
/// For the length of a task:
/// ```swift
/// try await HeraldClient.withConnection(to: "ws://127.0.0.1:8080/bayeux", logger: logger) { client in
///     let prices = try await client.subscribe("/stocks/*", as: Quote.self)
///     try await client.publish(Quote(px: 189.2), to: "/stocks/AAPL")
///     for try await event in prices { ... }
/// }
/// ```
/// For the lifetime of a service, make one and run it in a `ServiceGroup`: ``run()`` connects,
/// reconnects after losing the connection, and disconnects on graceful shutdown.
///
/// After a reconnect the client handshakes again and resubscribes every subscription. On
/// Herald channels that keep history it resumes each one from the last message it delivered,
/// so the subscription sees no gap and no duplicate; where the server no longer has that
/// position, the subscription yields ``HeraldEvent/gap(_:)`` and continues live.
public final class HeraldClient: Service, Sendable {
    let core: ClientCore
    let configuration: HeraldClientConfiguration
    let logger: Logger

    /// A client for the server at `url` (`ws://`, `wss://`, `http://` or `https://`: the same
    /// endpoint serves both transports). It connects when ``run()`` is called.
    public convenience init(url: String, configuration: HeraldClientConfiguration = .init(), logger: Logger) throws(HeraldClientError) {
        let transport = try NetworkTransport(url: url, configuration: configuration)
        self.init(transport: transport, configuration: configuration, logger: logger)
    }

    /// A client over any transport: an embedded broker's in-process transport, for one.
    public init(transport: some HeraldTransport, configuration: HeraldClientConfiguration = .init(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.core = ClientCore(transport: transport, configuration: configuration, logger: logger)
    }

    /// Connects and keeps the client connected until graceful shutdown, task cancellation or
    /// ``close()``; then disconnects. Throws only if it gives up (a refused handshake, or
    /// ``HeraldClientConfiguration/ReconnectPolicy/maximumAttempts`` used up).
    public func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await core.run(failFast: false)
        } onCancelOrGracefulShutdown: {
            Task { await self.core.close() }
        }
    }

    /// Connects, runs `body` with the connected client, and disconnects when it returns or
    /// throws. Throws if the first connection fails (unreachable, refused, timed out); later
    /// losses are reconnected.
    public static func withConnection<Result>(
        to url: String,
        configuration: HeraldClientConfiguration = .init(),
        logger: Logger,
        _ body: (HeraldClient) async throws -> Result
    ) async throws -> Result {
        let client = try HeraldClient(url: url, configuration: configuration, logger: logger)
        return try await client.withConnection(body)
    }

    /// Connects this client, runs `body`, and closes the client after it.
    public func withConnection<Result>(_ body: (HeraldClient) async throws -> Result) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.core.run(failFast: true) }
            do {
                try await core.waitUntilConnected(timeout: configuration.connectTimeout + .seconds(1))
                let result = try await body(self)
                await core.close()
                try await group.waitForAll()
                return result
            } catch {
                await core.close()
                group.cancelAll()
                // The run loop's own error says more than a waiter's.
                do {
                    try await group.waitForAll()
                } catch let runError {
                    throw runError
                }
                throw error
            }
        }
    }

    /// Disconnects (`/meta/disconnect`) and ends every subscription. Idempotent.
    public func close() async {
        await core.close()
    }

    /// The connection's state: the current one first, then each change, until closed.
    public var connectionStates: AsyncStream<HeraldConnectionState> {
        let (stream, continuation) = AsyncStream.makeStream(of: HeraldConnectionState.self)
        Task { await core.observeStates(continuation) }
        return stream
    }

    // MARK: Subscribing

    /// Subscribes to `pattern` (a channel, or a wildcard `/a/*`, `/a/**`) and returns once the
    /// server accepted it. Messages come as the raw JSON bytes of their `data`.
    ///
    /// - Parameters:
    ///   - pattern: a channel name or a wildcard pattern.
    ///   - replay: where to start on a channel with history (Herald); by default the
    ///     channel's retained value, if any, then live messages.
    /// - Throws: ``HeraldClientError`` `.subscriptionDenied` with the server's error,
    ///   `.replayPositionLost` if `replay` is no longer served, `.timedOut`.
    public func subscribe(_ pattern: String, replay: HeraldReplay? = nil) async throws -> HeraldSubscription<ByteBuffer> {
        let (id, events, buffered) = try await open(pattern, replay: replay)
        return .raw(pattern: pattern, id: id, core: core, events: events, buffered: buffered)
    }

    /// Subscribes to `pattern`, decoding each message's `data` as `Payload` with `decoder`
    /// (a message that does not decode ends the iteration with `.decodingFailed`).
    public func subscribe<Payload: Decodable & Sendable>(
        _ pattern: String,
        as type: Payload.Type,
        replay: HeraldReplay? = nil,
        decoder: @autoclosure @escaping @Sendable () -> JSONDecoder = JSONDecoder()
    ) async throws -> HeraldSubscription<Payload> {
        let (id, events, buffered) = try await open(pattern, replay: replay)
        let decoding = decoder()
        return HeraldSubscription(pattern: pattern, id: id, core: core, events: events, buffered: buffered) { buffer in
            try decoding.decode(Payload.self, from: Data(buffer.readableBytesView))
        }
    }

    private func open(_ pattern: String, replay: HeraldReplay?) async throws -> (Int, AsyncThrowingStream<HeraldEvent<ByteBuffer>, any Error>, BufferedMessages) {
        guard let parsed = ChannelPattern(pattern) else {
            throw HeraldClientError(.subscriptionDenied, channel: pattern, detail: "not a channel name or pattern")
        }
        let (events, continuation) = AsyncThrowingStream.makeStream(of: HeraldEvent<ByteBuffer>.self)
        let buffered = BufferedMessages()
        let id = try await core.subscribe(parsed, replay: replay, continuation: continuation, buffered: buffered)
        return (id, events, buffered)
    }

    // MARK: Publishing

    /// Publishes `value`, encoded as JSON, to `channel`, and returns when the server
    /// acknowledged it (on a `durable` Herald channel, once it is committed).
    ///
    /// Waits for a connection first, up to ``HeraldClientConfiguration/requestTimeout``.
    /// Publishes from several tasks are pipelined: they share batches and wait for their acks
    /// together.
    /// - Throws: ``HeraldClientError`` `.publishRefused` with the server's error, `.timedOut`,
    ///   `.connectionClosed` if the connection was lost before the ack (it may or may not have
    ///   been published).
    public func publish<Value: Encodable>(_ value: Value, to channel: String, encoder: JSONEncoder = JSONEncoder()) async throws {
        let data = try encoder.encode(value)
        try await publish(json: ByteBuffer(bytes: data), to: channel)
    }

    /// Publishes `json` (a JSON text, sent as it is) to `channel`; see ``publish(_:to:encoder:)``.
    public func publish(json: ByteBuffer, to channel: String, ext: JSONObject? = nil) async throws {
        try await enqueuePublish(json: json, to: channel, ext: ext).acknowledged()
    }

    /// Queues a publish and returns once it is queued, before its acknowledgement: publishes
    /// queued one after another are sent in that order (a task group of ``publish(json:to:ext:)-(ByteBuffer,_,_)``
    /// calls is not), while their acknowledgements are awaited together.
    /// ```swift
    /// var pending: [HeraldPendingPublish] = []
    /// for line in lines { pending.append(try await client.enqueuePublish(json: line, to: "/feed")) }
    /// for publish in pending { try await publish.acknowledged() }
    /// ```
    public func enqueuePublish(json: ByteBuffer, to channel: String, ext: JSONObject? = nil) async throws -> HeraldPendingPublish {
        guard Self.isJSON(json) else {
            throw HeraldClientError(.publishRefused, channel: channel, detail: "the data is not a JSON text")
        }
        var members: [(String, JSONValue)] = [("data", .raw(json))]
        if let ext { members.append(("ext", .object(ext))) }
        let reply = try await core.start(channel: channel, timeout: configuration.requestTimeout, members)
        return HeraldPendingPublish(channel: channel, reply: reply)
    }

    /// Publishes `json` (a JSON text) to `channel`.
    public func publish(json: String, to channel: String, ext: JSONObject? = nil) async throws {
        try await publish(json: ByteBuffer(string: json), to: channel, ext: ext)
    }

    static func isJSON(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { JSONParser.isValid($0) }
    }
}

/// A publish that was queued (``HeraldClient/enqueuePublish(json:to:ext:)``) and whose
/// acknowledgement may still be on its way.
public struct HeraldPendingPublish: Sendable {
    /// The channel published to.
    public let channel: String
    let reply: ReadySignal<BayeuxMessage>

    /// Waits for the server's acknowledgement; throws as ``HeraldClient/publish(json:to:ext:)-(ByteBuffer,_,_)``.
    public func acknowledged() async throws {
        let reply = try await reply.value()
        guard reply.successful == true else {
            throw HeraldClientError(.publishRefused, bayeuxError: reply.error ?? "refused without an error", channel: channel)
        }
    }
}
