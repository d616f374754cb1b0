import HeraldProtocol
import NIOCore

/// A WebSocket Bayeux session done by hand: handshake and one immediate connect over the
/// socket itself (as CometD's JavaScript client does), then request/response by frames.
/// Lighter than `BayeuxTestClient` for tests that open hundreds of clients.
struct RawBayeuxSocket: Sendable {
    let ws: TestWebSocket
    let clientId: String

    static func connect(port: Int) async throws -> RawBayeuxSocket {
        let ws = try await TestWebSocket.connect(port: port, on: LiveServer.group)
        try await ws.send(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"],"id":"h"}]"#)
        let reply = try JSONParser.parse(try await ws.receive())
        guard let clientId = reply.arrayValue?.first?["clientId"]?.stringValue else {
            throw BayeuxTestClient.Failure(description: "handshake failed: \(reply.jsonText)")
        }
        let socket = RawBayeuxSocket(ws: ws, clientId: clientId)
        _ = try await socket.exchange([#"{"channel":"/meta/connect","clientId":"\#(clientId)","connectionType":"websocket","id":"c","advice":{"timeout":0}}"#], expectReplies: 1)
        return socket
    }

    /// Sends `messages` in one frame and collects replies (messages with `successful`) until
    /// `expectReplies` arrived. Events that arrive meanwhile are dropped.
    func exchange(_ messages: [String], expectReplies: Int) async throws -> [JSONValue] {
        try await ws.send("[" + messages.joined(separator: ",") + "]")
        var replies: [JSONValue] = []
        while replies.count < expectReplies {
            for item in try JSONParser.parse(try await ws.receive()).arrayValue ?? [] where item["successful"] != nil {
                replies.append(item)
            }
        }
        return replies
    }

    /// Reads until `count` events (messages without `successful`) arrived.
    func events(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [JSONValue] {
        var events: [JSONValue] = []
        while events.count < count {
            for item in try JSONParser.parse(try await ws.receive(timeout: timeout)).arrayValue ?? [] where item["successful"] == nil {
                events.append(item)
            }
        }
        return events
    }

    func close() async { await ws.close() }
}
