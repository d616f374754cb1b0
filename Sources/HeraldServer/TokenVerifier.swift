public import HeraldCore
import HeraldProtocol
import JWTKit
import NIOHTTP1

/// Verifies the JSON Web Token a handshake presents, with jwt-kit: in the handshake's
/// `ext.auth.token`, or as `Authorization: Bearer …` on the HTTP request or the WebSocket
/// upgrade. HS256 with a shared secret (`--jwt-hs256-secret`); the signature, the algorithm
/// (only the configured one: `alg: none` and others are refused), `exp` and `nbf` are checked.
public final class TokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    private let ready: Task<Void, Never>

    public init(hs256Secret: String) {
        let keys = JWTKeyCollection()
        self.keys = keys
        self.ready = Task { await keys.add(hmac: HMACKey(from: hs256Secret), digestAlgorithm: .sha256) }
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim?
        var exp: ExpirationClaim?
        var nbf: NotBeforeClaim?
        /// Channel patterns the session may subscribe and publish to.
        var channels: [String]?

        func verify(using algorithm: some JWTAlgorithm) throws {
            try exp?.verifyNotExpired()
            try nbf?.verifyNotBefore()
        }
    }

    public func verify(_ token: String) async -> HandshakeCredential {
        await ready.value
        do {
            let claims = try await keys.verify(token, as: Claims.self)
            var patterns: [ChannelPattern]?
            if let channels = claims.channels {
                patterns = try channels.map { text in
                    guard let pattern = ChannelPattern(text) else { throw InvalidClaim(description: "channels: '\(text)' is not a channel pattern") }
                    return pattern
                }
            }
            return .valid(ClientIdentity(subject: claims.sub?.value, channels: patterns))
        } catch {
            return .invalid("\(error)")
        }
    }

    struct InvalidClaim: Error, CustomStringConvertible {
        let description: String
    }

    /// The token of a batch's handshake, if the batch has one: its `ext.auth.token`, else the
    /// request's bearer token. nil when the batch has no handshake.
    static func token(in messages: [BayeuxMessage], bearer: String?) -> String?? {
        guard let handshake = messages.first(where: { $0.channel == MetaChannel.handshake.rawValue }) else { return nil }
        if let token = handshake.ext?["auth"]?.objectValue?["token"]?.stringValue { return .some(token) }
        return .some(bearer)
    }

    /// `Authorization: Bearer <token>`.
    static func bearer(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1]).trimmingSpaces()
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
