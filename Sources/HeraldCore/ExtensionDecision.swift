public import HeraldProtocol

/// What an incoming extension decided.
public enum ExtensionDecision: Sendable {
    /// Go on processing.
    case `continue`
    /// Answer `successful: false` with this error, and do nothing else.
    case reject(BayeuxError)
    /// Drop the message silently: no reply at all.
    case drop
}
