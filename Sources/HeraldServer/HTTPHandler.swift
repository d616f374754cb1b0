import HeraldCore
import HeraldProtocol
import Logging
import NIOCore
import NIOHTTP1

/// Bayeux over HTTP: long-polling (`POST`, JSON or `message=` form bodies), callback-polling
/// (JSONP `GET ?message=…&jsonp=…`) and CORS preflight, on the mount path and its sub-paths
/// (bayeux-notes §3.3, §3.5).
///
/// A request holding a `/meta/connect` stays unanswered until events arrive or the connect
/// times out; `HTTPServerPipelineHandler` keeps later pipelined requests waiting meanwhile.
///
/// It exists only on connections whose first request was not a plain WebSocket upgrade (see
/// `UpgradeSniffer`), and it performs the WebSocket handshake itself for an upgrade on any of
/// their requests, refusals included (`WebSocketHandshake`).
///
/// Each connection is subject to the request timeout (`RequestDeadline`): idle keep-alive
/// connections and requests that do not arrive complete in time are closed.
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler, TickedConnection {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let broker: Broker
    let configuration: ServerConfiguration
    let cors: CORSPolicy
    let logger: Logger

    private var context: ChannelHandlerContext?
    /// The HTTP handlers in front of this one, removed on a WebSocket upgrade. The request
    /// decoder must be last: NIO defers its removal and then forwards any bytes that followed
    /// the upgrade request (an early first frame) to the WebSocket decoder.
    var httpHandlers: [any RemovableChannelHandler] = []
    /// Adds the WebSocket handlers behind this one.
    var installWebSocket: ((ChannelHandlerContext, HTTPHeaders) throws -> WebSocketHandler)?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var discarding = false
    /// The request being answered, its held connect and session (`TransportStateMachine`).
    private var state = TransportStateMachine(kind: .requestResponse)
    private var heldTimer = HeldConnectTimer()
    /// How the current request wants its response: JSONP or not, keep-alive, CORS headers.
    private var format: ResponseFormat?

    struct ResponseFormat {
        var jsonp: String?
        var keepAlive: Bool
        var corsHeaders: [(String, String)]
    }

    private var deadline: RequestDeadline
    private let ticker: ConnectionTicker
    private let traffic: TrafficCounters
    private let handshakes: HandshakeLimiter
    private let proxies: TrustedProxies
    /// The client's address for the request in progress: the peer's, or the one a trusted
    /// proxy forwarded.
    private var clientAddress: SocketAddress?
    private var handshakeBucket: TokenBucket
    /// Asked by the broker for each handshake of a batch: made once, not per request.
    private var admitHandshake: (() -> Limit?)?

    init(broker: Broker, configuration: ServerConfiguration, cors: CORSPolicy, deadline: RequestDeadline, ticker: ConnectionTicker, traffic: TrafficCounters, handshakes: HandshakeLimiter, proxies: TrustedProxies, logger: Logger) {
        self.traffic = traffic
        self.handshakes = handshakes
        self.proxies = proxies
        self.handshakeBucket = handshakes.connectionBucket()
        self.broker = broker
        self.configuration = configuration
        self.cors = cors
        self.deadline = deadline
        self.ticker = ticker
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress
        // A trusted proxy's connection carries many clients' requests (pooled upstream
        // connections): its own bucket would make them share one rate.
        let viaProxy = context.channel.remoteAddress.map { proxies.contains($0) } ?? false
        admitHandshake = { [unowned self] in handshakes.admit(from: clientAddress, connection: &handshakeBucket, viaProxy: viaProxy) }
        ticker.add(self)
    }

    func tick(now: NIODeadline) {
        guard deadline.hasExpired(now: now), let context else { return }
        logger.debug("request timeout: closing an HTTP connection", metadata: ["timeout.seconds": "\(configuration.requestTimeoutSeconds)"])
        context.close(promise: nil)
    }

    /// Lets NIO's pipelining handler close the connection (at once when idle, or after the
    /// response in progress, which it marks `Connection: close`), then answers a held connect
    /// now, with `reconnect: retry`. A connect that arrives later is answered at once too.
    func quiesce() {
        guard let context, !state.isQuiescing else { return }
        context.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        perform(state.quiesce())
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker.remove(self)
        perform(state.connectionClosed())
        self.context = nil
        httpHandlers = []
        installWebSocket = nil
        admitHandshake = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(state.connectionClosed())
        context.fireChannelInactive()
    }

    /// Carries out what the state machine decided.
    private func perform(_ actions: TransportStateMachine.Actions) {
        heldTimer.apply(actions, broker: broker, eventLoop: context?.eventLoop)
        // The broker answers through `heldConnectAnswered`, before this returns.
        if let held = actions.answerHeldConnect { broker.timeoutHeldConnect(held) }
        switch actions.output {
        case .nothing:
            break
        case .send(let messages), .sendAlone(let messages):
            respondBayeux(messages)
        case .sendWhenCommitted(let gate, let awaiting):
            // Durable publishes: the response waits for the commit.
            guard let context else { return }
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            gate.whenCommitted { replacements in
                loop.execute { bound.value.committed(awaiting, replacements: replacements) }
            }
        }
    }

    /// The durable publishes of a request were committed.
    func committed(_ awaiting: TransportStateMachine.AwaitingCommit, replacements: [Int: ByteBuffer]) {
        perform(state.committed(awaiting, replacements: replacements))
    }

    /// The held connect of request `exchange` was answered.
    func heldConnectAnswered(exchange: Int, messages: [ByteBuffer]) {
        perform(state.heldConnectAnswered(exchange: exchange, messages: messages))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = nil
            self.discarding = false
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > broker.configuration.maxBatchBytes {
                discarding = true
                broker.limits.record(.batchBytes)
                respondText(.payloadTooLarge, "Request body larger than \(broker.configuration.maxBatchBytes) bytes", head: head, close: true)
            }
        case .body(var chunk):
            traffic.received.add(chunk.readableBytes, ordering: .relaxed)
            guard !discarding, let head else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > broker.configuration.maxBatchBytes {
                discarding = true
                body = nil
                broker.limits.record(.batchBytes)
                respondText(.payloadTooLarge, "Request body larger than \(broker.configuration.maxBatchBytes) bytes", head: head, close: true)
                return
            }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard !discarding, let head else { return }
            deadline.requestReceived()
            handle(head: head, body: body ?? ByteBuffer())
            self.body = nil
        }
    }

    // MARK: Requests

    private func handle(head: HTTPRequestHead, body: ByteBuffer) {
        clientAddress = proxies.isEmpty
            ? context?.channel.remoteAddress
            : proxies.client(of: context?.channel.remoteAddress, forwardedFor: head.headers[canonicalForm: "x-forwarded-for"].map(String.init))
        let (path, query) = Self.splitURI(head.uri)
        guard isMounted(path) else {
            respondText(.notFound, "Not found: Bayeux is served at \(configuration.path)", head: head)
            return
        }
        let origin = head.headers.first(name: "origin")
        switch head.method {
        case .OPTIONS:
            let headers = cors.preflightHeaders(origin: origin, host: head.headers.first(name: "host"), requestedHeaders: head.headers.first(name: "access-control-request-headers"))
            respond(status: origin != nil && headers.isEmpty ? .forbidden : .noContent, contentType: nil, body: ByteBuffer(), head: head, extraHeaders: headers)
        case .POST:
            // A browser sends simple POSTs (Faye's text/plain form bodies) without a
            // preflight: refusing only the CORS headers would still let any page publish blind.
            if let origin, !cors.allows(origin: origin, host: head.headers.first(name: "host")) {
                respondText(.forbidden, "Forbidden: Origin \(origin) is not allowed (--allowed-origins)", head: head)
                return
            }
            let contentType = head.headers.first(name: "content-type")?.lowercased() ?? ""
            if contentType.hasPrefix("application/json") {
                bayeux(decode: [body], head: head, jsonp: nil, origin: origin)
            } else {
                // Form bodies (`message=…`), which Faye's CORS transport sends as text/plain.
                let text = String(buffer: body)
                if text.hasPrefix("message="), let params = FormDecoding.parameters(Substring(text)) {
                    let values = params.filter { $0.0 == "message" }.map { ByteBuffer(string: $0.1) }
                    bayeux(decode: values, head: head, jsonp: nil, origin: origin)
                } else {
                    bayeux(decode: [body], head: head, jsonp: nil, origin: origin)
                }
            }
        case .GET where head.headers.first(name: "upgrade")?.lowercased() == "websocket":
            if let origin, !cors.allows(origin: origin, host: head.headers.first(name: "host")) {
                respondText(.forbidden, "Forbidden: WebSocket upgrade refused for Origin \(origin)", head: head, close: true)
                return
            }
            switch WebSocketHandshake.accept(head) {
            case .success(let accept):
                upgrade(accept: accept, headers: head.headers)
            case .failure(.unsupportedVersion):
                respondText(.upgradeRequired, "Upgrade required: only WebSocket version 13 (RFC 6455) is supported", head: head, close: true, extraHeaders: [("Sec-WebSocket-Version", "13")])
            case .failure:
                respondText(.badRequest, "Bad request: invalid WebSocket upgrade (RFC 6455 §4.2.1 needs Connection: Upgrade, one Sec-WebSocket-Key and Sec-WebSocket-Version: 13)", head: head, close: true)
            }
        case .GET:
            guard let params = FormDecoding.parameters(query), let message = params.first(where: { $0.0 == "message" })?.1 else {
                respondText(.badRequest, "Bad request: GET needs a message= parameter (callback-polling)", head: head)
                return
            }
            let callback = params.first(where: { $0.0 == "jsonp" })?.1 ?? "jsonpcallback"
            guard FormDecoding.isValidCallback(callback) else {
                respondText(.badRequest, "Bad request: invalid jsonp callback name", head: head)
                return
            }
            // A script load carries no Origin and needs no CORS: the page that loads it runs
            // the reply. Judge it by the page's origin: its Origin, or else, for a browser's
            // cross-origin load (Sec-Fetch-Site), the origin its Referer names ("null" if none).
            if let page = Self.callbackPage(origin: origin, headers: head.headers), !cors.allows(origin: page, host: head.headers.first(name: "host")) {
                respondText(.forbidden, "Forbidden: callback-polling from \(page) is not allowed (--allowed-origins)", head: head)
                return
            }
            bayeux(decode: [ByteBuffer(string: message)], head: head, jsonp: callback, origin: origin)
        default:
            respondText(.methodNotAllowed, "Method not allowed", head: head, extraHeaders: [("Allow", "GET, POST, OPTIONS")])
        }
    }

    /// The origin of the page behind a callback-polling request, when a browser says it is
    /// another origin's; nil for a same-origin load or a non-browser client.
    static func callbackPage(origin: String?, headers: HTTPHeaders) -> String? {
        if let origin { return origin }
        guard let site = headers.first(name: "sec-fetch-site")?.lowercased(), site == "cross-site" || site == "same-site" else { return nil }
        guard let referer = headers.first(name: "referer") else { return "null" }
        let parts = referer.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        // "https:", "", "host:port", "path…"
        guard parts.count >= 3, parts[0].hasSuffix(":"), parts[1].isEmpty else { return "null" }
        let authority = parts[2].prefix { $0 != "?" && $0 != "#" }
        return "\(parts[0])//\(authority)"
    }

    /// Switches the connection to WebSocket: the WebSocket handlers go in, the HTTP ones
    /// (this one included) go out, and `101` is written as raw bytes before any frame.
    private func upgrade(accept: String, headers upgradeHeaders: HTTPHeaders) {
        guard let context, let installWebSocket else { return }
        do {
            let webSocket = try installWebSocket(context, upgradeHeaders)
            let sync = context.pipeline.syncOperations
            for handler in httpHandlers { sync.removeHandler(handler, promise: nil) }
            sync.removeHandler(context: context, promise: nil)
            webSocket.upgraded(accept: accept)
        } catch {
            logger.warning("websocket upgrade failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func bayeux(decode bodies: [ByteBuffer], head: HTTPRequestHead, jsonp: String?, origin: String?) {
        var messages: [BayeuxMessage] = []
        do {
            for body in bodies {
                messages += try MessageCodec.decodeBatch(body, maxMessages: broker.configuration.maxMessagesPerBatch)
            }
        } catch {
            switch error {
            case .tooManyMessages:
                broker.limits.record(.batchMessages)
                respondText(.payloadTooLarge, "Bad request: \(error)", head: head)
            default: respondText(.badRequest, "Bad request: \(error)", head: head)
            }
            return
        }
        guard messages.count <= broker.configuration.maxMessagesPerBatch else {
            broker.limits.record(.batchMessages)
            respondText(.payloadTooLarge, "Bad request: more than \(broker.configuration.maxMessagesPerBatch) messages", head: head)
            return
        }
        guard let context else { return }
        // A handshake that brought no browser cookie is given one. Load balancers in front of
        // several nodes stick a long-polling client's requests to its node on it
        // (docs/cluster.md), as they do with CometD's; with tokens it also binds sessions.
        var browser = BrowserCookie.find(in: head.headers[canonicalForm: "cookie"].map(String.init))
        var setCookie: String?
        if browser == nil, messages.contains(where: { $0.channel == MetaChannel.handshake.rawValue }) {
            browser = BrowserCookie.generate()
            setCookie = BrowserCookie.setCookie(browser!, secure: configuration.tls != nil)
        }
        guard let verifier = configuration.tokenVerifier else {
            process(messages, head: head, jsonp: jsonp, origin: origin, credential: .absent, proof: ClientProof(), setCookie: setCookie)
            return
        }
        // Tokens are required: sessions are bound to their client (`SessionBinding`) by the
        // browser cookie, or by a token presented again.
        let proof = ClientProof(browser: browser)
        guard let token = TokenVerifier.token(in: messages, bearer: TokenVerifier.bearer(head.headers)) else {
            process(messages, head: head, jsonp: jsonp, origin: origin, credential: .absent, proof: proof, setCookie: setCookie)
            return
        }
        // Verification is asynchronous; the pipelining handler keeps later requests waiting
        // until this one is answered.
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        Task {
            let credential = await verifier.verify(token)
            loop.execute { bound.value.process(messages, head: head, jsonp: jsonp, origin: origin, credential: credential, proof: proof, setCookie: setCookie) }
        }
    }

    private func process(_ messages: [BayeuxMessage], head: HTTPRequestHead, jsonp: String?, origin: String?, credential: HandshakeCredential, proof: ClientProof, setCookie: String? = nil) {
        guard let context else { return }
        var headers = cors.headers(origin: origin, host: head.headers.first(name: "host"))
        if let setCookie { headers.append(("Set-Cookie", setCookie)) }
        format = ResponseFormat(jsonp: jsonp, keepAlive: head.isKeepAlive, corsHeaders: headers)
        let responder = LongPollResponder(handler: self, eventLoop: context.eventLoop, broker: broker, exchange: state.nextExchange, remoteAddress: clientAddress)
        let result = broker.process(messages, type: jsonp == nil ? .longPolling : .callbackPolling, connection: responder, admitHandshake: admitHandshake, credential: credential, proof: proof)
        perform(state.batchProcessed(result, connection: responder))
    }

    // MARK: Responses

    /// Answers the current request with `messages`, as it asked (`format`).
    private func respondBayeux(_ messages: [ByteBuffer]) {
        guard let context, let format else { return }
        self.format = nil
        let (jsonp, keepAlive, corsHeaders) = (format.jsonp, format.keepAlive, format.corsHeaders)
        let allocator = context.channel.allocator
        var headers = corsHeaders
        headers.append(("Cache-Control", "no-cache, no-store"))
        headers.append(("X-Content-Type-Options", "nosniff"))
        if let jsonp {
            var body = allocator.buffer(capacity: 64)
            body.writeString("/**/\(jsonp)(")
            var array = FrameBuilder.array(messages, allocator: allocator)
            body.writeBuffer(&array)
            body.writeString(");")
            headers.append(("Content-Disposition", "attachment; filename=f.txt"))
            respond(status: .ok, contentType: "text/javascript; charset=utf-8", body: body, keepAlive: keepAlive, extraHeaders: headers)
        } else {
            respond(status: .ok, contentType: "application/json; charset=utf-8", body: FrameBuilder.array(messages, allocator: allocator), keepAlive: keepAlive, extraHeaders: headers)
        }
    }

    private func respondText(_ status: HTTPResponseStatus, _ text: String, head: HTTPRequestHead, close: Bool = false, extraHeaders: [(String, String)] = []) {
        var headers = cors.headers(origin: head.headers.first(name: "origin"), host: head.headers.first(name: "host"))
        headers += extraHeaders
        respond(status: status, contentType: "text/plain; charset=utf-8", body: ByteBuffer(string: text + "\n"), keepAlive: head.isKeepAlive && !close, extraHeaders: headers)
    }

    private func respond(status: HTTPResponseStatus, contentType: String?, body: ByteBuffer, head: HTTPRequestHead, extraHeaders: [(String, String)]) {
        respond(status: status, contentType: contentType, body: body, keepAlive: head.isKeepAlive, extraHeaders: extraHeaders)
    }

    private func respond(status: HTTPResponseStatus, contentType: String?, body: ByteBuffer, keepAlive: Bool, extraHeaders: [(String, String)]) {
        guard let context else { return }
        // The wait for the next request starts now.
        deadline.responded()
        var headers = HTTPHeaders(extraHeaders)
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 {
            traffic.sent.add(body.readableBytes, ordering: .relaxed)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }

    // MARK: Paths

    /// The path and the query of a request target.
    static func splitURI(_ uri: String) -> (path: Substring, query: Substring) {
        if let q = uri.firstIndex(of: "?") {
            return (uri[..<q], uri[uri.index(after: q)...])
        }
        return (Substring(uri), "")
    }

    func isMounted(_ path: Substring) -> Bool {
        Self.isMounted(path, mount: configuration.path)
    }

    /// The mount path itself or any path below it (Faye: `^/mount(/[^/]*)*(\.[^.]+)?$`).
    static func isMounted(_ path: Substring, mount: String) -> Bool {
        let mount = mount.hasSuffix("/") && mount.count > 1 ? String(mount.dropLast()) : mount
        if path == mount || mount == "/" { return true }
        return path.hasPrefix(mount + "/")
    }
}
