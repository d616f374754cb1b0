public import HeraldCore
import HeraldProtocol
import JWTKit
import NIOHTTP1
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Verifies the JSON Web Token a handshake presents, with jwt-kit: in the handshake's
/// `ext.auth.token`, or as `Authorization: Bearer …` on the HTTP request or the WebSocket
/// upgrade. Keys: an HS256 shared secret (`--jwt-hs256-secret`), public keys from PEM files
/// (`--jwt-public-key`: an EC P-256 key verifies ES256, an RSA key of 2048 bits or more
/// RS256), and the same kinds of keys from a JWKS file (`--jwt-jwks`), which `reload()` re-reads
/// (on SIGHUP) for key rotation. The signature, the algorithm (only the configured keys'
/// algorithms: `alg: none` and others are refused), `exp` and `nbf` are checked.
public final class TokenVerifier: Sendable {
    private let hs256Secret: String?
    private let fixedKeys: [PublicKey]
    /// The JWKS file, re-read by `reload()`.
    public let jwksPath: String?
    /// The keys in use: replaced whole by `reload()`, so a verification sees one set.
    private let keys: Mutex<Task<JWTKeyCollection, Never>>

    /// A key file that holds no usable key.
    public struct KeyError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    enum PublicKey: Sendable {
        case es256(ES256PublicKey)
        case rs256(Insecure.RSA.PublicKey)
    }

    public convenience init(hs256Secret: String) {
        self.init(hs256Secret: hs256Secret, publicKeys: [])
    }

    /// - Parameters:
    ///   - publicKeyPEMs: the contents of PEM public key files, with their names for errors.
    ///   - jwksPath: a JSON Web Key Set file (RFC 7517 §5).
    public convenience init(hs256Secret: String?, publicKeyPEMs: [(name: String, pem: String)], jwksPath: String? = nil) throws(KeyError) {
        var keys: [PublicKey] = []
        for (name, pem) in publicKeyPEMs {
            if let key = try? ES256PublicKey(pem: pem) {
                keys.append(.es256(key))
            } else if let key = try? Insecure.RSA.PublicKey(pem: pem) {
                keys.append(.rs256(key))
            } else {
                throw KeyError(description: "\(name) is not an EC P-256 or RSA (2048 bits or more) public key in PEM")
            }
        }
        let jwks = try jwksPath.map { path throws(KeyError) in try Self.readJWKS(path) } ?? []
        self.init(hs256Secret: hs256Secret, publicKeys: keys, jwks: jwks, jwksPath: jwksPath)
    }

    init(hs256Secret: String?, publicKeys: [PublicKey], jwks: [PublicKey] = [], jwksPath: String? = nil) {
        self.hs256Secret = hs256Secret
        self.fixedKeys = publicKeys
        self.jwksPath = jwksPath
        self.keys = Mutex(Self.collection(hs256Secret: hs256Secret, publicKeys: publicKeys + jwks))
    }

    /// Re-reads the JWKS file and uses its keys from the next verification on; returns how
    /// many it holds. A file that cannot be read or holds no usable key throws, and the keys
    /// in use stay. Without a JWKS file, does nothing.
    @discardableResult
    public func reload() throws(KeyError) -> Int {
        guard let jwksPath else { return 0 }
        let jwks = try Self.readJWKS(jwksPath)
        let fresh = Self.collection(hs256Secret: hs256Secret, publicKeys: fixedKeys + jwks)
        keys.withLock { $0 = fresh }
        return jwks.count
    }

    private static func collection(hs256Secret: String?, publicKeys: [PublicKey]) -> Task<JWTKeyCollection, Never> {
        Task {
            let keys = JWTKeyCollection()
            // jwt-kit keeps one key without a `kid` (the default) and iterates only over keys
            // with one: each key goes in under a `kid` of its own, and the first also as the
            // default, so that tokens without `kid` are tried against all of them.
            var index = 0
            if let hs256Secret {
                await keys.add(hmac: HMACKey(from: hs256Secret), digestAlgorithm: .sha256)
                await keys.add(hmac: HMACKey(from: hs256Secret), digestAlgorithm: .sha256, kid: JWKIdentifier(string: "herald-hs256"))
                index = 1
            }
            for (offset, key) in publicKeys.enumerated() {
                let kids: [JWKIdentifier?] = index == 0 && offset == 0 ? [nil, JWKIdentifier(string: "herald-\(offset)")] : [JWKIdentifier(string: "herald-\(offset)")]
                for kid in kids {
                    switch key {
                    case .es256(let key): await keys.add(ecdsa: key, kid: kid)
                    case .rs256(let key): await keys.add(rsa: key, digestAlgorithm: .sha256, kid: kid)
                    }
                }
            }
            return keys
        }
    }

    /// The keys of a JWKS file that verify RS256 (`kty` RSA) or ES256 (`kty` EC, `crv` P-256).
    /// Keys for other algorithms, and keys marked `"use": "enc"`, are left out; a file with
    /// none usable is an error, naming the file.
    static func readJWKS(_ path: String) throws(KeyError) -> [PublicKey] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KeyError(description: "cannot read the JWKS file \(path)")
        }
        guard let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)), let list = json.objectValue?["keys"]?.arrayValue else {
            throw KeyError(description: "\(path) is not a JSON Web Key Set: expected {\"keys\": [...]}")
        }
        var keys: [PublicKey] = []
        for case .object(let key) in list {
            if key["use"]?.stringValue == "enc" { continue }
            let algorithm = key["alg"]?.stringValue
            switch key["kty"]?.stringValue {
            case "RSA" where algorithm == nil || algorithm == "RS256":
                guard let n = key["n"]?.stringValue, let e = key["e"]?.stringValue, let rsa = try? Insecure.RSA.PublicKey(modulus: n, exponent: e) else {
                    throw KeyError(description: "\(path): an RSA key without a valid n and e, or under 2048 bits")
                }
                keys.append(.rs256(rsa))
            case "EC" where (algorithm == nil || algorithm == "ES256") && key["crv"]?.stringValue == "P-256":
                guard let x = key["x"]?.stringValue, let y = key["y"]?.stringValue, let ec = try? ES256PublicKey(parameters: (x: x, y: y)) else {
                    throw KeyError(description: "\(path): an EC P-256 key without a valid x and y")
                }
                keys.append(.es256(ec))
            default:
                continue
            }
        }
        guard !keys.isEmpty else {
            throw KeyError(description: "\(path) holds no RS256 (RSA) or ES256 (EC P-256) signing key")
        }
        return keys
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
        let keys = await self.keys.withLock { $0 }.value
        do {
            // Every key is tried (tokens need not name theirs with `kid`); each checks that the
            // token's `alg` is its own, so a public key is never taken for an HMAC secret.
            let claims = try await keys.verify(token, as: Claims.self, iteratingKeys: true)
            var patterns: [ChannelPattern]?
            if let channels = claims.channels {
                patterns = try channels.map { text in
                    guard let pattern = ChannelPattern(text) else { throw InvalidClaim(description: "channels: '\(text)' is not a channel pattern") }
                    return pattern
                }
            }
            let expiry = claims.exp.map { Int64($0.value.timeIntervalSince1970 * 1000) }
            return .valid(ClientIdentity(subject: claims.sub?.value, channels: patterns, expiresAtMilliseconds: expiry, claims: Self.payload(of: token)))
        } catch {
            return .invalid("\(error)")
        }
    }

    /// The claims of a token that verified, for the `claim:` channel permissions: its payload
    /// segment, base64url-decoded and parsed.
    static func payload(of token: String) -> JSONObject {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let bytes = base64URLDecoded(parts[1]) else { return JSONObject() }
        return (try? JSONParser.parse(String(decoding: bytes, as: UTF8.self)))?.objectValue ?? JSONObject()
    }

    /// RFC 4648 §5, padding optional.
    static func base64URLDecoded(_ text: Substring) -> [UInt8]? {
        var base64 = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map(Array.init)
    }

    struct InvalidClaim: Error, CustomStringConvertible {
        let description: String
    }

    /// The token to verify before a batch is processed: its handshake's `ext.auth.token`, else
    /// `bearer`; without a handshake, the first `ext.auth.token` of any message (a connect's
    /// refreshes the session; any shows that the session is the client's own, see
    /// `SessionBinding`), else `bearer`. nil when there is nothing to verify.
    static func token(in messages: [BayeuxMessage], bearer: String?) -> String? {
        if let handshake = messages.first(where: { $0.channel == MetaChannel.handshake.rawValue }) {
            return handshake.ext?["auth"]?.objectValue?["token"]?.stringValue ?? bearer
        }
        for message in messages {
            if let token = message.ext?["auth"]?.objectValue?["token"]?.stringValue { return token }
        }
        return bearer
    }

    /// `credential` as it stands now: a valid token whose `exp` has passed since it was verified
    /// is not valid any more.
    static func current(_ credential: HandshakeCredential, nowMilliseconds: Int64) -> HandshakeCredential {
        if case .valid(let identity) = credential, let expiry = identity.expiresAtMilliseconds, expiry <= nowMilliseconds {
            return .invalid("token expired")
        }
        return credential
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
