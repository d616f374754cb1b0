/// Who a session belongs to, from the token its handshake presented (`HandshakeCredential`).
public struct ClientIdentity: Sendable, Equatable {
    /// The token's `sub` claim: the user, shown in the admin API's client detail.
    public let subject: String?

    public init(subject: String?) {
        self.subject = subject
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
