import HeraldProtocol
import NIOCore
import NIOPosix

/// A small Bayeux client over the raw test transports, for live tests. It handshakes over
/// HTTP (as Faye's and aiocometd's clients do), then runs the connect loop over WebSocket or
/// long-polling, collecting events.
actor BayeuxTestClient {
    enum Transport: String, CaseIterable, Sendable, CustomStringConvertible {
        case websocket
        case longPolling = "long-polling"
        var description: String { rawValue }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let port: Int
    let transport: Transport
    let group: any EventLoopGroup
    private(set) var clientId = ""
    private(set) var events: [JSONValue] = []
    private(set) var connectReplies: [JSONValue] = []
    private var socket: TestWebSocket?
    private var waiting: [String: CheckedContinuation<JSONValue, any Error>] = [:]
    private var nextId = 0
    private var running = false
    private var loop: Task<Void, Never>?

    init(port: Int, transport: Transport, group: any EventLoopGroup = LiveServer.group) {
        self.port = port
        self.transport = transport
        self.group = group
    }

    private func makeId() -> String {
        nextId += 1
        return String(nextId)
    }

    // MARK: Session

    /// Handshake over HTTP, then open the transport and send the first connect.
    func start() async throws {
        let reply = try await post([
            #"{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket","long-polling"],"id":"\#(makeId())"}"#,
        ]).first!
        guard reply["successful"] == .bool(true), let id = reply["clientId"]?.stringValue else {
            throw Failure(description: "handshake failed: \(reply.jsonText)")
        }
        clientId = id
        running = true
        switch transport {
        case .websocket:
            let socket = try await TestWebSocket.connect(port: port, on: group)
            self.socket = socket
            loop = Task { await self.readLoop(socket) }
            let first = try await request(#"{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"websocket","id":"\#(makeId())"}"#)
            guard first["successful"] == .bool(true) else { throw Failure(description: "connect failed: \(first.jsonText)") }
            try await sendConnect()
        case .longPolling:
            let first = try await request(#"{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"long-polling","id":"\#(makeId())"}"#)
            guard first["successful"] == .bool(true) else { throw Failure(description: "connect failed: \(first.jsonText)") }
            loop = Task { await self.pollLoop() }
        }
    }

    func stop() async {
        running = false
        loop?.cancel()
        await socket?.close()
        for (_, continuation) in waiting { continuation.resume(throwing: Failure(description: "stopped")) }
        waiting.removeAll()
    }

    // MARK: Operations

    func subscribe(_ subscription: String, ext: String? = nil) async throws -> JSONValue {
        let extField = ext.map { ",\"ext\":" + $0 } ?? ""
        return try await request(#"{"channel":"/meta/subscribe","clientId":"\#(clientId)","subscription":"\#(subscription)","id":"\#(makeId())"\#(extField)}"#)
    }

    func unsubscribe(_ subscription: String) async throws -> JSONValue {
        try await request(#"{"channel":"/meta/unsubscribe","clientId":"\#(clientId)","subscription":"\#(subscription)","id":"\#(makeId())"}"#)
    }

    func publish(_ channel: String, _ data: String) async throws -> JSONValue {
        try await request(#"{"channel":"\#(channel)","clientId":"\#(clientId)","data":\#(data),"id":"\#(makeId())"}"#)
    }

    func disconnect() async throws -> JSONValue {
        let reply = try await request(#"{"channel":"/meta/disconnect","clientId":"\#(clientId)","id":"\#(makeId())"}"#)
        running = false
        return reply
    }

    /// Sends one message and waits for the reply with its id.
    func request(_ message: String) async throws -> JSONValue {
        let parsed = try JSONParser.parse(message)
        let id = parsed["id"]!.stringValue!
        switch transport {
        case .websocket:
            guard let socket else { throw Failure(description: "not started") }
            return try await withCheckedThrowingContinuation { continuation in
                waiting[id] = continuation
                Task {
                    do {
                        try await socket.send("[" + message + "]")
                    } catch {
                        self.fail(id, error)
                    }
                }
            }
        case .longPolling:
            let messages = try await post([message])
            var reply: JSONValue?
            for message in messages {
                if message["successful"] != nil, message["id"] == .string(id) { reply = message } else if message["successful"] == nil { events.append(message) }
            }
            guard let reply else { throw Failure(description: "no reply to \(message)") }
            return reply
        }
    }

    private func fail(_ id: String, _ error: any Error) {
        waiting.removeValue(forKey: id)?.resume(throwing: error)
    }

    /// Waits until at least `count` events arrived.
    func waitForEvents(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [JSONValue] {
        let deadline = ContinuousClock.now + timeout
        while events.count < count {
            if ContinuousClock.now > deadline {
                throw Failure(description: "timed out with \(events.count) of \(count) events")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return events
    }

    // MARK: Transports

    func post(_ messages: [String]) async throws -> [JSONValue] {
        let response = try await TestHTTP.postJSON("[" + messages.joined(separator: ",") + "]", port: port, timeout: .seconds(60), on: group)
        guard response.status == 200 else { throw Failure(description: "HTTP \(response.status): \(response.text)") }
        guard case .array(let items) = try JSONParser.parse(response.text) else { throw Failure(description: "not an array: \(response.text)") }
        return items
    }

    private func sendConnect() async throws {
        try await socket?.send(#"[{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"websocket","id":"\#(makeId())"}]"#)
    }

    /// Reads until the socket closes; `running` only decides whether connects are renewed.
    private func readLoop(_ socket: TestWebSocket) async {
        while !Task.isCancelled {
            let text: String
            do {
                text = try await socket.receive(timeout: .seconds(120))
            } catch {
                for (_, continuation) in waiting { continuation.resume(throwing: error) }
                waiting.removeAll()
                return
            }
            guard case .array(let items)? = try? JSONParser.parse(text) else { continue }
            for item in items {
                if item["successful"] != nil {
                    if item["channel"] == .string("/meta/connect") { connectReplies.append(item) }
                    if let id = item["id"]?.stringValue, let continuation = waiting.removeValue(forKey: id) {
                        continuation.resume(returning: item)
                    } else if item["channel"] == .string("/meta/connect"), running, item["successful"] == .bool(true) {
                        try? await sendConnect()
                    }
                } else {
                    events.append(item)
                }
            }
        }
    }

    private func pollLoop() async {
        while running && !Task.isCancelled {
            do {
                let items = try await post([#"{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"long-polling","id":"\#(makeId())"}"#])
                for item in items {
                    if item["successful"] != nil {
                        connectReplies.append(item)
                        if item["successful"] == .bool(false) { running = false }
                    } else {
                        events.append(item)
                    }
                }
            } catch {
                if running { try? await Task.sleep(for: .milliseconds(50)) }
            }
        }
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? { objectValue?[key] }
}
