public import HeraldProtocol
import Synchronization

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
    /// The token's claims, all of them, for the `claim:` channel permissions.
    public let claims: JSONObject

    public init(subject: String?, channels: [ChannelPattern]? = nil, expiresAtMilliseconds: Int64? = nil, claims: JSONObject = JSONObject()) {
        self.subject = subject
        self.channels = channels
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.claims = claims
    }

    /// Whether the token carries the claim `name`: `true` when `value` is nil, else the string
    /// `value` or an array that contains it.
    public func hasClaim(_ name: String, value: String?) -> Bool {
        guard let claim = claims[name] else { return false }
        guard let value else { return claim == .bool(true) }
        if claim == .string(value) { return true }
        return claim.arrayValue?.contains(.string(value)) ?? false
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

/// What a batch shows about who sends it, besides a token (`HandshakeCredential`): the
/// transport fills it in, and the broker compares it with the `SessionBinding` of each session
/// the batch names.
package struct ClientProof: Sendable, Equatable {
    /// The WebSocket connection the batch came on (`ConnectionNumbers`); nil over HTTP, where a
    /// proxy may pool many clients' requests on one connection.
    package var connection: UInt64?
    /// The request's `BAYEUX_BROWSER` cookie (the upgrade request's, for a WebSocket).
    package var browser: String?

    package init(connection: UInt64? = nil, browser: String? = nil) {
        self.connection = connection
        self.browser = browser
    }
}

/// Whom a session belongs to, when the broker requires tokens: a clientId alone does not let
/// another connection use the session. A later request must come on the WebSocket that
/// handshook, carry the `BAYEUX_BROWSER` cookie the handshake was given, or present a valid
/// token for the same `sub`. Anything else is answered as if the clientId were unknown
/// (`402::Unknown client`), and counted under `session_binding`.
package struct SessionBinding: Sendable, Equatable {
    package let connection: UInt64?
    package let browser: String?
    package let subject: String?

    package init(connection: UInt64?, browser: String?, subject: String?) {
        self.connection = connection
        self.browser = browser
        self.subject = subject
    }

    /// Whether a batch with `proof` and `credential` may act for the session.
    package func admits(_ proof: ClientProof, credential: HandshakeCredential) -> Bool {
        if let connection, proof.connection == connection { return true }
        if let browser, let presented = proof.browser, ConstantTime.equal(Array(browser.utf8), Array(presented.utf8)) { return true }
        if let subject, case .valid(let identity) = credential, identity.subject == subject { return true }
        return false
    }
}

/// Comparing secrets (tokens, cookies) without stopping at the first difference.
package enum ConstantTime {
    package static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// Numbers for WebSocket connections, never reused while the process runs (an
/// `ObjectIdentifier` may be, once its object is gone).
package enum ConnectionNumbers {
    private static let next = Atomic<UInt64>(1)

    package static func take() -> UInt64 {
        next.wrappingAdd(1, ordering: .relaxed).oldValue
    }
}

/// The `BAYEUX_BROWSER` cookie: a random identifier Herald gives a client on its handshake
/// when tokens are required, and which binds the sessions it opens (`SessionBinding`). CometD
/// names its browser cookie the same.
package enum BrowserCookie {
    package static let name = "BAYEUX_BROWSER"

    /// A fresh identifier: 160 random bits, as 40 hex digits.
    package static func generate() -> String { ClientID.generate() }

    /// The identifier in a `Cookie` header, if it has the form Herald gives.
    package static func find(in cookieHeaders: [String]) -> String? {
        for header in cookieHeaders {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard trimmed.hasPrefix(name + "=") else { continue }
                let value = trimmed.dropFirst(name.count + 1)
                if value.utf8.count == 40, value.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
                    return String(value)
                }
            }
        }
        return nil
    }

    /// The `Set-Cookie` value: HttpOnly, for the whole host, `Secure` over TLS. No `SameSite`:
    /// the cookie jar of Faye's Ruby client (the `cookiejar` gem) fails the whole response on
    /// an attribute it does not know, and browsers treat a cookie without it as `Lax`. A page of
    /// another site presents its token again instead (`SessionBinding`).
    package static func setCookie(_ value: String, secure: Bool) -> String {
        "\(name)=\(value); Path=/; HttpOnly" + (secure ? "; Secure" : "")
    }
}
