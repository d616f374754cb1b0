/// Why a configuration could not be resolved. Each message names what to fix: the
/// environment variable, the setting, or the file and the key within it.
///
/// A struct around a private enum, so that new cases can be added without breaking callers
/// that switch over them.
public struct HeraldConfigurationError: Error, Equatable, Sendable {
    private enum Base: Equatable, Sendable {
        case notAnInteger(variable: String, text: String)
        case notABoolean(variable: String, text: String)
        case unknownLogLevel(String)
        case invalidByteLimits
        case invalidPath
        case invalidOutboundLimit(minimum: Int)
        case invalidTimeout
        case tlsPairIncomplete(certificateFlag: String, keyFlag: String)
        case tlsFiles(String)
        case invalidTrustedProxy(String)
        case weakJWTSecret
        case jwtKey(String)
        case unreadableFile(file: String)
        case invalidFile(file: String, reason: String)
        case notAnObject(file: String)
        case unknownSetting(file: String, key: String)
        case channelsNotAnObject(file: String)
        case unreadableTokenFile(file: String)
        case adminNeedsToken(host: String)
        case unknownEngine(String)
        case postgresURLMissing
    }

    private let base: Base

    private init(_ base: Base) {
        self.base = base
    }

    /// An environment variable that must hold an integer does not.
    public static func notAnInteger(variable: String, text: String) -> Self {
        .init(.notAnInteger(variable: variable, text: text))
    }

    /// An environment variable that must hold a boolean (`true`, `false`, `1`, `0`) does not.
    public static func notABoolean(variable: String, text: String) -> Self {
        .init(.notABoolean(variable: variable, text: text))
    }

    /// The log level is not one of swift-log's level names.
    public static func unknownLogLevel(_ text: String) -> Self { .init(.unknownLogLevel(text)) }

    /// `maxMessageBytes` is not positive, or `maxBatchBytes` is smaller than it: a batch must
    /// be able to carry the largest message.
    public static var invalidByteLimits: Self { .init(.invalidByteLimits) }

    /// `maxOutboundBufferBytes` is below the write buffer's high-water mark.
    public static func invalidOutboundLimit(minimum: Int) -> Self { .init(.invalidOutboundLimit(minimum: minimum)) }

    /// A timeout in seconds (write stall, request, WebSocket ping) is below 1.
    public static var invalidTimeout: Self { .init(.invalidTimeout) }

    /// Only one of a certificate and its key was given.
    public static func tlsPairIncomplete(certificateFlag: String, keyFlag: String) -> Self {
        .init(.tlsPairIncomplete(certificateFlag: certificateFlag, keyFlag: keyFlag))
    }

    /// A TLS certificate or key file could not be read, or they do not belong together.
    public static func tlsFiles(_ message: String) -> Self { .init(.tlsFiles(message)) }

    /// The HS256 secret is shorter than 32 bytes (RFC 7518 §3.2).
    public static var weakJWTSecret: Self { .init(.weakJWTSecret) }

    /// A JWT public key file cannot be read or holds no usable key.
    public static func jwtKey(_ message: String) -> Self { .init(.jwtKey(message)) }

    /// A trusted proxy is neither an IP address nor a CIDR range.
    public static func invalidTrustedProxy(_ entry: String) -> Self { .init(.invalidTrustedProxy(entry)) }

    /// The mount path does not start with `/`.
    public static var invalidPath: Self { .init(.invalidPath) }

    /// The configuration file does not exist or cannot be read.
    public static func unreadableFile(_ file: String) -> Self { .init(.unreadableFile(file: file)) }

    /// The configuration file is not valid JSON or YAML, or a value in it is not valid;
    /// `reason` names the key.
    public static func invalidFile(_ file: String, reason: String) -> Self {
        .init(.invalidFile(file: file, reason: reason))
    }

    /// The configuration file's top level is not an object.
    public static func notAnObject(_ file: String) -> Self { .init(.notAnObject(file: file)) }

    /// The configuration file has a top-level key Herald does not know (a typo, usually).
    public static func unknownSetting(_ file: String, key: String) -> Self {
        .init(.unknownSetting(file: file, key: key))
    }

    /// The configuration file's `channels` is not an object.
    public static func channelsNotAnObject(_ file: String) -> Self { .init(.channelsNotAnObject(file: file)) }

    /// The admin token file does not exist, cannot be read, or is empty.
    public static func unreadableTokenFile(_ file: String) -> Self { .init(.unreadableTokenFile(file: file)) }

    /// `--engine` is neither `sqlite` nor `postgres`.
    public static func unknownEngine(_ text: String) -> Self { .init(.unknownEngine(text)) }

    /// `--engine postgres` without `--postgres-url`.
    public static var postgresURLMissing: Self { .init(.postgresURLMissing) }

    /// The admin API was asked to bind a non-loopback address without a token.
    public static func adminNeedsToken(host: String) -> Self { .init(.adminNeedsToken(host: host)) }

    /// The configuration file the error is about, if it is about one.
    public var file: String? {
        switch base {
        case .notAnInteger, .notABoolean, .unknownLogLevel, .invalidByteLimits, .invalidPath, .invalidOutboundLimit, .invalidTimeout, .tlsPairIncomplete, .tlsFiles, .invalidTrustedProxy, .weakJWTSecret, .jwtKey, .adminNeedsToken, .unknownEngine, .postgresURLMissing: nil
        case .unreadableTokenFile(let file): file
        case .unreadableFile(let file), .invalidFile(let file, _), .notAnObject(let file),
             .unknownSetting(let file, _), .channelsNotAnObject(let file):
            file
        }
    }
}

extension HeraldConfigurationError: CustomStringConvertible {
    /// `herald serve` prints this as it is; README and scripts know these texts.
    public var description: String {
        switch base {
        case .notAnInteger(let variable, let text): "\(variable) must be an integer, got '\(text)'"
        case .notABoolean(let variable, let text): "\(variable) must be true or false, got '\(text)'"
        case .unknownLogLevel(let text): "unknown log level '\(text)'"
        case .invalidByteLimits: "max-batch-bytes must be at least max-message-bytes, and both positive"
        case .invalidPath: "path must start with /"
        case .invalidOutboundLimit(let minimum): "max-outbound-bytes must be at least \(minimum) (the write buffer's high-water mark)"
        case .tlsPairIncomplete(let certificate, let key): "\(certificate) and \(key) go together: give both, or neither"
        case .tlsFiles(let message): message
        case .jwtKey(let message): message
        case .weakJWTSecret: "jwt-hs256-secret must be at least 32 bytes (RFC 7518 §3.2: a key as long as the hash)"
        case .invalidTrustedProxy(let entry): "trusted-proxies: '\(entry)' is not an IP address or a CIDR range such as 10.0.0.0/8"
        case .invalidTimeout: "write-stall-timeout-s, request-timeout-s and ping-interval-s must be at least 1"
        case .unreadableFile(let file): "cannot read configuration file \(file)"
        case .invalidFile(let file, let reason): "\(file): \(reason)"
        case .notAnObject(let file): "\(file): expected a JSON object"
        case .unknownSetting(let file, let key): "\(file): unknown setting '\(key)' (known: \(ConfigurationFile.keys.joined(separator: ", ")))"
        case .channelsNotAnObject(let file): "\(file): channels must be an object"
        case .unreadableTokenFile(let file): "cannot read a token from admin token file \(file) (it must hold the token on one line)"
        case .unknownEngine(let text): "engine must be sqlite or postgres, got '\(text)'"
        case .postgresURLMissing: "--engine postgres needs --postgres-url (or HERALD_POSTGRES_URL, or postgresURL in the configuration file), e.g. postgres://herald:secret@db:5432/herald"
        case .adminNeedsToken(let host): "the admin API reads and writes: it binds \(host) only with a token (--admin-token-file or HERALD_ADMIN_TOKEN); without one, bind it to 127.0.0.1"
        }
    }
}
