/// A Bayeux error, written on the wire as `code:args:message` (Bayeux 1.0 §3.2.6).
///
/// Herald uses Faye's codes, which the clients were written against, with the offending value
/// in `args`; the unknown-session error is CometD 2/3's `402::Unknown client` (clients act on the
/// advice, not the code). Every code Herald sends is listed in `Protocol/PROTOCOL.md`.
public struct BayeuxError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Int
    public var args: [String]
    public var message: String

    public init(code: Int, args: [String] = [], message: String) {
        self.code = code
        self.args = args
        self.message = message
    }

    /// `402::Unknown client`: the clientId is missing, unknown or expired. Sent with
    /// `reconnect: handshake` advice on `/meta/connect`.
    public static let unknownClient = BayeuxError(code: 402, message: "Unknown client")

    public static func missingParameter(_ name: String) -> BayeuxError {
        BayeuxError(code: 402, args: [name], message: "Missing required parameter")
    }

    public static func connectionTypesNotSupported(_ types: [String]) -> BayeuxError {
        BayeuxError(code: 301, args: types, message: "Connection types not supported")
    }

    public static func forbiddenChannel(_ channel: String) -> BayeuxError {
        BayeuxError(code: 403, args: [channel], message: "Forbidden channel")
    }

    public static func invalidChannel(_ channel: String) -> BayeuxError {
        BayeuxError(code: 405, args: [channel], message: "Invalid channel")
    }

    public static func badRequest(_ reason: String) -> BayeuxError {
        BayeuxError(code: 400, message: "Bad request: \(reason)")
    }

    /// `413:<limit>:Message too large`: one message is over `maxMessageBytes`. 413 is not in
    /// Bayeux 1.0's table; it mirrors HTTP's status so operators recognise it.
    public static func messageTooLarge(limit: Int) -> BayeuxError {
        BayeuxError(code: 413, args: [String(limit)], message: "Message too large")
    }

    public static func tooManySubscriptions(limit: Int) -> BayeuxError {
        BayeuxError(code: 403, args: [String(limit)], message: "Too many subscriptions")
    }

    public static func publishFailed(_ reason: String) -> BayeuxError {
        BayeuxError(code: 407, message: "Failed to publish: \(reason)")
    }

    /// The wire form, `code:args:message`.
    public var description: String {
        "\(code):\(args.joined(separator: ",")):\(message)"
    }
}
