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
final class UpgradeSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Heads longer than this go to the HTTP decoder, which applies its own limits.
    static let maxHeadBytes = 8 * 1024

    private let mountPath: String
    private let cors: CORSPolicy
    private let installWebSocket: (ChannelHandlerContext) throws -> WebSocketHandler
    private let installHTTP: (ChannelHandlerContext) throws -> Void
    private var buffered: ByteBuffer?
    private var done = false

    init(
        mountPath: String,
        cors: CORSPolicy,
        installWebSocket: @escaping (ChannelHandlerContext) throws -> WebSocketHandler,
        installHTTP: @escaping (ChannelHandlerContext) throws -> Void
    ) {
        self.mountPath = mountPath
        self.cors = cors
        self.installWebSocket = installWebSocket
        self.installHTTP = installHTTP
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
        guard prefix.elementsEqual(Array("GET ".utf8).prefix(prefix.count)) else { return fallBack(context) }
        guard let headEnd = Self.endOfHead(bytes) else {
            if bytes.readableBytes > Self.maxHeadBytes { fallBack(context) }
            return
        }
        guard let head = Self.parseHead(bytes.getSlice(at: bytes.readerIndex, length: headEnd - bytes.readerIndex)!),
              case .success(let accept) = WebSocketHandshake.accept(head),
              isAllowed(head)
        else { return fallBack(context) }
        upgrade(context, accept: accept, rest: bytes.getSlice(at: headEnd, length: bytes.writerIndex - headEnd)!)
    }

    private func isAllowed(_ head: HTTPRequestHead) -> Bool {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard HTTPHandler.isMounted(path, mount: mountPath) else { return false }
        if let origin = head.headers.first(name: "origin") {
            return cors.allows(origin: origin, host: head.headers.first(name: "host"))
        }
        return true
    }

    private func upgrade(_ context: ChannelHandlerContext, accept: String, rest: ByteBuffer) {
        done = true
        buffered = nil
        do {
            let webSocket = try installWebSocket(context)
            webSocket.upgraded(response: WebSocketHandshake.switchingProtocols(accept: accept, allocator: context.channel.allocator))
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
            try installHTTP(context)
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
        let valid = head.withUnsafeReadableBytes { bytes in
            bytes.allSatisfy { $0 == 0x0D || $0 == 0x0A || $0 == 0x09 || (0x20..<0x7F).contains($0) }
        }
        guard valid else { return nil }
        let text = String(decoding: head.readableBytesView, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        // The head ends with an empty line (two, after splitting the final CRLF CRLF).
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let requestLine = lines.first else { return nil }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "GET", parts[2] == "HTTP/1.1", parts[1].first == "/" else { return nil }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  line.first != " ", line.first != "\t", !line.contains("\n"), !line.contains("\r")
            else { return nil }
            let name = line[..<colon]
            guard !name.contains(" "), !name.contains("\t") else { return nil }
            let lowered = name.lowercased()
            guard lowered != "content-length", lowered != "transfer-encoding" else { return nil }
            let value = line[line.index(after: colon)...].trimmingSpacesAndTabs()
            headers.append((String(name), String(value)))
        }
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: String(parts[1]), headers: HTTPHeaders(headers))
    }
}

extension Substring {
    fileprivate func trimmingSpacesAndTabs() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
