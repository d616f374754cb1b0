public import HeraldProtocol

/// Who a session belongs to, from the token its handshake presented (`HandshakeCredential`).
public struct ClientIdentity: Sendable, Equatable {
    /// The token's `sub` claim: the user, shown in the admin API's client detail.
    public let subject: String?
    /// The token's `channels` claim: the patterns the session may subscribe and publish to.
    /// nil: the claim was absent, and the channel options alone decide.
    public let channels: [ChannelPattern]?
    /// The token's `exp`, in milliseconds since 1970: the session ends then unless a
    /// `/meta/connect` brings a fresh token for the same subject.
    public let expiresAtMilliseconds: Int64?

    public init(subject: String?, channels: [ChannelPattern]? = nil, expiresAtMilliseconds: Int64? = nil) {
        self.subject = subject
        self.channels = channels
        self.expiresAtMilliseconds = expiresAtMilliseconds
    }

    /// Whether the claim lets the session publish to `channel`.
    public func mayPublish(_ channel: ChannelName) -> Bool {
        channels.map { $0.contains { $0.matches(channel) } } ?? true
    }

    /// Whether the claim lets the session subscribe to `pattern`: some claimed pattern must
    /// cover every channel the subscription could match.
    public func maySubscribe(_ pattern: ChannelPattern) -> Bool {
        channels.map { $0.contains { $0.covers(pattern) } } ?? true
    }
}

/// What a transport found about a handshake's token before the broker sees the handshake
/// (verification is asynchronous, the broker's processing is not).
public enum HandshakeCredential: Sendable, Equatable {
    /// No token was presented.
    case absent
    /// A token verified: signature, algorithm, `exp` and `nbf`.
    case valid(ClientIdentity)
    /// A token was presented and refused; the reason is for the log, not the client.
    case invalid(String)
}
