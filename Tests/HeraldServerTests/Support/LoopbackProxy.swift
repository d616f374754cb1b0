import NIOCore
import NIOPosix
import Synchronization

/// A loopback TCP proxy for HTTP clients. With `refuseUpgrades`, it refuses WebSocket upgrades
/// as some corporate proxies do: a connection whose request head asks for `Upgrade: websocket`
/// gets `403` and is closed. Any other connection is passed through unchanged, both ways, to
/// the first of `upstreams` (ports on 127.0.0.1) that accepts it: a load balancer's failover.
final class LoopbackProxy: Sendable {
    let port: Int
    private let listener: any Channel
    private let counts: Counts

    /// Upgrades refused and connections passed through so far.
    final class Counts: Sendable {
        let refused = Atomic(0)
        let passed = Atomic(0)
    }

    var refusedUpgrades: Int { counts.refused.load(ordering: .relaxed) }
    var passedConnections: Int { counts.passed.load(ordering: .relaxed) }

    private init(port: Int, listener: any Channel, counts: Counts) {
        self.port = port
        self.listener = listener
        self.counts = counts
    }

    static func start(upstreams: [Int], refuseUpgrades: Bool = false, on group: any EventLoopGroup) async throws -> LoopbackProxy {
        let counts = Counts()
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.addHandler(Front(upstreams: upstreams, refuseUpgrades: refuseUpgrades, counts: counts))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackProxy(port: listener.localAddress!.port!, listener: listener, counts: counts)
    }

    func stop() async {
        try? await listener.close()
    }

    /// The client's side: buffers the request head, then refuses or connects upstream.
    private final class Front: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        enum State {
            case readingHead(ByteBuffer)
            case connecting([ByteBuffer])
            case piping(any Channel)
            case refused
        }

        let upstreams: [Int]
        let refuseUpgrades: Bool
        let counts: Counts
        var state = State.readingHead(ByteBuffer())

        init(upstreams: [Int], refuseUpgrades: Bool, counts: Counts) {
            self.upstreams = upstreams
            self.refuseUpgrades = refuseUpgrades
            self.counts = counts
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            switch state {
            case .piping(let back):
                back.writeAndFlush(bytes, promise: nil)
            case .connecting(var queued):
                queued.append(bytes)
                state = .connecting(queued)
            case .refused:
                break
            case .readingHead(var buffered):
                buffered.writeBuffer(&bytes)
                let text = String(buffer: buffered)
                guard text.contains("\r\n\r\n") else {
                    state = .readingHead(buffered)
                    return
                }
                if refuseUpgrades, text.lowercased().contains("upgrade: websocket") {
                    state = .refused
                    counts.refused.add(1, ordering: .relaxed)
                    let refusal = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: refusal))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
                    return
                }
                state = .connecting([buffered])
                counts.passed.add(1, ordering: .relaxed)
                let front = context.channel
                let loop = context.eventLoop
                Self.connect(upstreams[...], front: front, on: loop)
                    .whenComplete { result in
                        switch (result, self.state) {
                        case (.success(let back), .connecting(let queued)):
                            for chunk in queued { back.write(chunk, promise: nil) }
                            back.flush()
                            self.state = .piping(back)
                        case (.success(let back), _):
                            back.close(promise: nil)
                        case (.failure, _):
                            front.close(promise: nil)
                        }
                    }
            }
        }

        /// The first of `ports` that accepts a connection.
        static func connect(_ ports: ArraySlice<Int>, front: any Channel, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
            guard let port = ports.first else { return loop.makeFailedFuture(ChannelError.connectPending) }
            return ClientBootstrap(group: loop)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in channel.pipeline.addHandler(Back(front: front)) }
                .connect(host: "127.0.0.1", port: port)
                .hop(to: loop)
                .flatMapError { _ in connect(ports.dropFirst(), front: front, on: loop) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if case .piping(let back) = state { back.close(promise: nil) }
            state = .refused
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// The upstream side: everything goes back to the client.
    private final class Back: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let front: any Channel

        init(front: any Channel) { self.front = front }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            front.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            front.close(promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
