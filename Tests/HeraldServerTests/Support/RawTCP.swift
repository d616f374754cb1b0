import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

enum RawTCPError: Error, Sendable {
    case timeout(Duration)
}

/// A bare TCP client for hand-made requests (garbage, oversized headers) and slow-consumer tests.
///
/// With `autoRead: false` the socket is never read unless `read`/`readAll` is called (each call
/// then pulls at most what the kernel has), so the server sees a full TCP window.
final class RawTCP: Sendable {
    fileprivate enum Event: Sendable {
        case data([UInt8])
        case eof
        case failure(any Error)
    }

    private let channel: any Channel
    private let mailbox: TestMailbox<Event>
    private let autoReadEnabled: Atomic<Bool>
    private let closeErrorBox = Mutex<(any Error)?>(nil)

    private init(channel: any Channel, mailbox: TestMailbox<Event>, autoRead: Bool) {
        self.channel = channel
        self.mailbox = mailbox
        self.autoReadEnabled = Atomic(autoRead)
    }

    /// - Parameters:
    ///   - autoRead: false = never read from the socket on its own (slow / stalled consumer).
    ///   - receiveBufferSize: SO_RCVBUF, set before connecting so it also shapes the TCP window.
    ///   - tls: speak TLS with this context (server name `localhost`).
    static func connect(
        host: String = "127.0.0.1",
        port: Int,
        autoRead: Bool = true,
        receiveBufferSize: Int? = nil,
        timeout: Duration = .seconds(5),
        tls: NIOSSLContext? = nil,
        on group: any EventLoopGroup
    ) async throws -> RawTCP {
        let mailbox = TestMailbox<Event>()
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    }
                    try channel.pipeline.syncOperations.addHandler(RawTCPHandler(mailbox: mailbox))
                }
            }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        return RawTCP(channel: channel, mailbox: mailbox, autoRead: autoRead)
    }

    /// True once the connection is gone (EOF, reset, or `close()`).
    var isClosed: Bool { !self.channel.isActive }

    /// The error that ended the connection, if it ended with one (e.g. connection reset).
    var closeError: (any Error)? { self.closeErrorBox.withLock { $0 } }

    func write(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Writes `bytes` if the peer takes them within `timeout`: false when they are still not
    /// all handed to the kernel by then (the peer stopped reading and the buffers are full).
    func write(_ bytes: [UInt8], within timeout: TimeAmount) async -> Bool {
        let loop = self.channel.eventLoop
        let promise = loop.makePromise(of: Bool.self)
        let done = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: loop)
        let channel = self.channel
        loop.execute {
            channel.writeAndFlush(ByteBuffer(bytes: bytes)).whenComplete { result in
                guard !done.value else { return }
                done.value = true
                promise.succeed((try? result.get()) != nil)
            }
            loop.scheduleTask(in: timeout) {
                guard !done.value else { return }
                done.value = true
                promise.succeed(false)
            }
        }
        return (try? await promise.futureResult.get()) ?? false
    }

    func write(_ string: String) async throws {
        try await self.write(Array(string.utf8))
    }

    /// Next chunk of bytes as delivered by the socket; nil on EOF (also on connection reset,
    /// see `closeError`). Throws `RawTCPError.timeout`.
    func read(timeout: Duration = .seconds(5)) async throws -> [UInt8]? {
        if !self.autoReadEnabled.load(ordering: .relaxed), self.mailbox.bufferedCount == 0 {
            self.channel.read()
        }
        let event: Event
        do {
            event = try await self.mailbox.next(timeout: timeout, scheduler: self.channel.eventLoop)
        } catch TestMailboxError.timeout {
            throw RawTCPError.timeout(timeout)
        }
        switch event {
        case .data(let bytes):
            return bytes
        case .eof:
            return nil
        case .failure(let error):
            if error is IOError || error is ChannelError {
                self.closeErrorBox.withLock { $0 = error }
                return nil
            }
            throw error
        }
    }

    /// Everything received until EOF or until `timeout` elapses, whichever comes first (does not
    /// throw on timeout; check `isClosed` / `sawEOF` to tell the two apart).
    func readAll(until timeout: Duration = .seconds(5)) async throws -> [UInt8] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var collected: [UInt8] = []
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return collected }
            do {
                guard let chunk = try await self.read(timeout: remaining) else { return collected }
                collected += chunk
            } catch RawTCPError.timeout {
                return collected
            }
        }
    }

    /// Whether the peer's EOF (or a reset) has been received (it may still be behind buffered data).
    var sawEOF: Bool { self.mailbox.isFinished }

    /// Turn automatic reading on/off (off = the server's writes pile up in the kernel buffers).
    func setAutoRead(_ enabled: Bool) async throws {
        self.autoReadEnabled.store(enabled, ordering: .relaxed)
        try await self.channel.setOption(.autoRead, value: enabled).get()
        if enabled { self.channel.read() }
    }

    /// SO_RCVBUF after connect (the kernel may double/clamp it; affects the window less than at connect).
    func setReceiveBufferSize(_ size: Int) async throws {
        try await self.channel.setOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(size)).get()
    }

    /// Half-close: send FIN but keep reading.
    func shutdownWrite() async throws {
        try await self.channel.close(mode: .output).get()
    }

    /// Close the connection. Idempotent.
    func close() async {
        try? await self.channel.close().get()
    }
}

private final class RawTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let mailbox: TestMailbox<RawTCP.Event>

    init(mailbox: TestMailbox<RawTCP.Event>) {
        self.mailbox = mailbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.mailbox.push(.data(Array(buffer.readableBytesView)))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.mailbox.finish(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.mailbox.finish(.eof)
        context.fireChannelInactive()
    }
}
