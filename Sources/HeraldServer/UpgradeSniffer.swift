import NIOCore
import NIOHTTP1

/// The only handler of a new connection. It reads the first request head itself; when it is a
/// plain, valid WebSocket upgrade it switches straight to the WebSocket handlers, and for
/// anything else it installs the HTTP pipeline and hands it every byte read so far.
///
/// Nearly every connection of a real-time broker is a WebSocket, and building the HTTP
/// pipeline (decoder, encoder, pipelining and error handlers, `HTTPHandler`) only to tear it
/// down after one request was the largest part of connection setup that Herald controls. The
/// check is deliberately narrow: `GET … HTTP/1.1`, plain header lines, no body, and every
/// condition of `WebSocketHandshake.accept`. Whatever does not fit, including every malformed
/// or refused upgrade, takes the HTTP path, whose responses are unchanged.
///
/// Until the head is in, the connection is subject to the request timeout (`RequestDeadline`),
/// which the HTTP pipeline inherits when it takes over.
final class UpgradeSniffer: ChannelInboundHandler, RemovableChannelHandler, TickedConnection {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Heads longer than this go to the HTTP decoder, which applies its own limits.
    static let maxHeadBytes = 8 * 1024
    private static let get = Array("GET ".utf8)

    private let mountPath: String
    private let cors: CORSPolicy
    private let installWebSocket: (ChannelHandlerContext, HTTPHeaders) throws -> WebSocketHandler
    private let installHTTP: (ChannelHandlerContext, RequestDeadline) throws -> Void
    private var buffered: ByteBuffer?
    private var done = false
    private let deadline: RequestDeadline
    private let ticker: ConnectionTicker
    private var context: ChannelHandlerContext?

    init(
        mountPath: String,
        cors: CORSPolicy,
        deadline: RequestDeadline,
        ticker: ConnectionTicker,
        installWebSocket: @escaping (ChannelHandlerContext, HTTPHeaders) throws -> WebSocketHandler,
        installHTTP: @escaping (ChannelHandlerContext, RequestDeadline) throws -> Void
    ) {
        self.mountPath = mountPath
        self.cors = cors
        self.deadline = deadline
        self.ticker = ticker
        self.installWebSocket = installWebSocket
        self.installHTTP = installHTTP
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        ticker.add(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker.remove(self)
        self.context = nil
    }

    func tick(now: NIODeadline) {
        if !done, deadline.hasExpired(now: now) { context?.close(promise: nil) }
    }

    /// Nothing has been asked yet: there is nothing to answer.
    func quiesce() {
        if !done { context?.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        if buffered == nil {
            buffered = chunk
        } else {
            buffered!.writeBuffer(&chunk)
        }
        let bytes = buffered!
        // Not a GET: no need to wait for the whole head.
        let prefix = bytes.getBytes(at: bytes.readerIndex, length: min(4, bytes.readableBytes)) ?? []
        guard prefix.elementsEqual(Self.get.prefix(prefix.count)) else { return fallBack(context) }
        guard let headEnd = Self.endOfHead(bytes) else {
            if bytes.readableBytes > Self.maxHeadBytes { fallBack(context) }
            return
        }
        guard let head = Self.parseHead(bytes.getSlice(at: bytes.readerIndex, length: headEnd - bytes.readerIndex)!),
              isAllowed(head),
              case .success(let accept) = WebSocketHandshake.accept(head)
        else { return fallBack(context) }
        upgrade(context, headers: head.headers, accept: accept, rest: bytes.getSlice(at: headEnd, length: bytes.writerIndex - headEnd)!)
    }

    private func isAllowed(_ head: HTTPRequestHead) -> Bool {
        guard HTTPHandler.isMounted(HTTPHandler.splitURI(head.uri).path, mount: mountPath) else { return false }
        if let origin = head.headers.first(name: "origin") {
            return cors.allows(origin: origin, host: head.headers.first(name: "host"))
        }
        return true
    }

    private func upgrade(_ context: ChannelHandlerContext, headers: HTTPHeaders, accept: String, rest: ByteBuffer) {
        done = true
        buffered = nil
        do {
            let webSocket = try installWebSocket(context, headers)
            webSocket.upgraded(accept: accept)
            if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    /// Installs the HTTP pipeline behind this handler and replays what was read into it.
    private func fallBack(_ context: ChannelHandlerContext) {
        done = true
        let bytes = buffered
        buffered = nil
        do {
            try installHTTP(context, deadline)
            if let bytes { context.fireChannelRead(wrapInboundOut(bytes)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    /// The index just past the `\r\n\r\n` that ends the head, if it has arrived.
    static func endOfHead(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= 4 else { return nil }
            for i in 3..<bytes.count where bytes[i] == 0x0A && bytes[i - 1] == 0x0D && bytes[i - 2] == 0x0A && bytes[i - 3] == 0x0D {
                return buffer.readerIndex + i + 1
            }
            return nil
        }
    }

    /// Parses `GET target HTTP/1.1` and plain `name: value` lines. Anything unusual (other
    /// versions, folded lines, control or non-ASCII bytes, a body) gives nil: the HTTP
    /// decoder then judges the request.
    static func parseHead(_ head: ByteBuffer) -> HTTPRequestHead? {
        head.withUnsafeReadableBytes { bytes -> HTTPRequestHead? in
            // Lines end in CRLF; a bare CR or LF, or any control or non-ASCII byte, is unusual.
            var lines: [Range<Int>] = []
            var start = 0
            var i = 0
            while i < bytes.count {
                let b = bytes[i]
                if b == 0x0D {
                    guard i + 1 < bytes.count, bytes[i + 1] == 0x0A else { return nil }
                    lines.append(start..<i)
                    i += 2
                    start = i
                    continue
                }
                guard b == 0x09 || (0x20..<0x7F).contains(b), b != 0x0A else { return nil }
                i += 1
            }
            guard start == bytes.count else { return nil }
            while lines.last?.isEmpty == true { lines.removeLast() }
            guard let requestLine = lines.first else { return nil }
            // "GET " target " HTTP/1.1", single spaces.
            let get = Array("GET /".utf8)
            let version = Array(" HTTP/1.1".utf8)
            guard requestLine.count > get.count + version.count,
                  bytes[requestLine.lowerBound..<(requestLine.lowerBound + get.count)].elementsEqual(get),
                  bytes[(requestLine.upperBound - version.count)..<requestLine.upperBound].elementsEqual(version)
            else { return nil }
            let target = (requestLine.lowerBound + 4)..<(requestLine.upperBound - version.count)
            guard !bytes[target].contains(0x20) else { return nil }
            var headers: [(String, String)] = []
            headers.reserveCapacity(lines.count - 1)
            for line in lines.dropFirst() {
                guard let colon = bytes[line].firstIndex(of: UInt8(ascii: ":")), colon > line.lowerBound else { return nil }
                let name = line.lowerBound..<colon
                guard !bytes[name].contains(where: { $0 == 0x20 || $0 == 0x09 }) else { return nil }
                var valueStart = colon + 1
                var valueEnd = line.upperBound
                while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
                while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
                let nameText = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[name]), as: UTF8.self)
                switch nameText.lowercased() {
                case "content-length", "transfer-encoding": return nil
                default: break
                }
                headers.append((nameText, String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self)))
            }
            let uri = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[target]), as: UTF8.self)
            return HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
        }
    }
}

