public import NIOCore

/// One incoming Bayeux message (Bayeux 1.0 §3), as decoded from a client.
///
/// Only the envelope is decoded. `data` stays the publisher's validated JSON bytes, a slice of
/// the frame or request body it came in, and is forwarded to subscribers without being
/// re-encoded.
public struct BayeuxMessage: Sendable {
    public var channel: String?
    /// Echoed verbatim (same JSON type) in the reply. A string or number of at most
    /// `maxIdBytes`; a longer one is not kept (the message is answered `400:id:…` without it).
    public var id: JSONValue?
    /// The longest `id` Herald echoes. CometD's ids are counters and Faye's are short base-36
    /// strings; 256 bytes leaves room for UUIDs and prefixes.
    public static let maxIdBytes = 256
    public var clientId: String?
    /// The raw JSON of `data`, if present.
    public var data: ByteBuffer?
    public var ext: JSONObject?
    public var advice: JSONObject?
    /// A string or an array of strings on `/meta/(un)subscribe`; echoed in the reply.
    public var subscription: JSONValue?
    public var connectionType: String?
    public var version: String?
    public var minimumVersion: String?
    public var supportedConnectionTypes: [String]?
    /// A reply's outcome (server to client): read by clients, ignored by the broker.
    public var successful: Bool?
    /// A failed reply's `code:args:message` (server to client).
    public var error: String?
    /// Size of the message object in the input, in bytes.
    public var byteCount: Int
    /// Set when a known field has the wrong JSON type; the broker answers with an error.
    public var malformedField: String?
    /// The `id` was longer than `maxIdBytes` (and `malformedField` is `id`).
    public var idTooLong = false

    public init(channel: String? = nil, id: JSONValue? = nil, clientId: String? = nil, data: ByteBuffer? = nil, byteCount: Int = 0) {
        self.channel = channel
        self.id = id
        self.clientId = clientId
        self.data = data
        self.byteCount = byteCount
    }

    /// Client advice `timeout` in milliseconds (`{"timeout":0}` asks for an immediate reply).
    public var adviceTimeoutMilliseconds: Int? {
        guard let value = advice?["timeout"] else { return nil }
        return value.intValue ?? value.doubleValue.map { Int($0) }
    }
}

/// The well-known meta channels. Only these exact names are commands: `/meta/subscribe/x` is
/// not a subscribe (this is the hole of Faye advisory GHSA-qpg4-4w7w-2mq5).
public enum MetaChannel: String, Sendable {
    case handshake = "/meta/handshake"
    case connect = "/meta/connect"
    case subscribe = "/meta/subscribe"
    case unsubscribe = "/meta/unsubscribe"
    case disconnect = "/meta/disconnect"

    /// The meta command `channel` names, if any. Cheaper than `init(rawValue:)` for the
    /// channels of publishes, which are compared with no candidate unless they start `/meta/`.
    public static func command(_ channel: String) -> MetaChannel? {
        guard channel.utf8.count >= 11, channel.utf8.starts(with: "/meta/".utf8) else { return nil }
        return MetaChannel(rawValue: channel)
    }
}

/// Bayeux connection types Herald serves.
public enum ConnectionType: String, Sendable, CaseIterable {
    case websocket
    case longPolling = "long-polling"
    case callbackPolling = "callback-polling"
    /// Faye's browser CORS transport: long-polling with `message=` form bodies.
    case crossOriginLongPolling = "cross-origin-long-polling"

    public static let supported: [String] = ConnectionType.allCases.map(\.rawValue)
}
