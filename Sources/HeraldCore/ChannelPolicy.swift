public import HeraldProtocol

/// What Herald keeps for the channels matching a pattern (configuration `channels` map).
///
/// With no options a channel is a plain pipe: nothing is retained, nothing has an offset.
public struct ChannelPolicy: Sendable, Equatable {
    /// Keep the last message per concrete channel and send it to new subscribers first.
    public var retain = false
    /// Keep this many recent messages per channel, for replay. 0 keeps none.
    public var historySize = 0
    /// Drop history entries older than this, in milliseconds. nil keeps them until `historySize`.
    public var historyTTLMilliseconds: Int64?
    /// Stop serving a retained value older than this, in milliseconds (yesterday's close must
    /// not look live). nil serves it forever.
    public var retainedTTLMilliseconds: Int64?
    /// Write retained values, history, offsets and epochs to the message store.
    public var persist = false
    /// Acknowledge a publish only once it is committed to the store (implies `persist`).
    public var durable = false
    /// What happens to a subscriber that falls behind (`maxPendingBytesPerSession`).
    public var slowConsumer = SlowConsumerPolicy.disconnect
    /// At most this many updates a second per channel to each subscriber, always the latest
    /// value (Lightstreamer's merge mode). nil: every message.
    public var maxFrequency: Double?
    /// Who may publish to the channel; nil leaves it to a less specific pattern, and to the
    /// default when none sets it (`ChannelPermission`).
    public var publish: ChannelPermission?
    /// Who may subscribe to the channel; nil as for `publish`. `.server` is not allowed here.
    public var subscribe: ChannelPermission?

    public init() {}

    /// Whether messages on the channel get offsets and are logged at all.
    public var isLogged: Bool { retain || historySize > 0 }
    public var isPersisted: Bool { isLogged && (persist || durable) }
}

/// Who may publish or subscribe to a channel (channel options `publish` and `subscribe`).
///
/// Where no pattern sets the option: `.anyone` without tokens, `.authenticated` with tokens
/// required. Anonymous sessions exist only when tokens are required and some pattern sets
/// `"anyone"` explicitly (`ChannelPolicyTable.admitsAnonymous`).
public enum ChannelPermission: Sendable, Equatable, CustomStringConvertible {
    /// Any client with a session, anonymous ones included.
    case anyone
    /// Sessions whose handshake presented a valid token.
    case authenticated
    /// Sessions whose token carries the claim `name`: `true` when `value` is nil, else the
    /// string `value` or an array containing it (`"claim:role=trader"`).
    case claim(name: String, value: String?)
    /// Only the server side: the admin API's `POST /v1/publish` and in-process publishers
    /// (`Broker.publish`). A client's publish is refused with `403:<channel>:Publish not allowed`.
    case server

    /// `"anyone"`, `"authenticated"`, `"server"`, `"claim:NAME"` or `"claim:NAME=VALUE"`.
    public init?(_ text: String) {
        switch text {
        case "anyone": self = .anyone
        case "authenticated": self = .authenticated
        case "server": self = .server
        default:
            guard text.hasPrefix("claim:") else { return nil }
            let rest = text.dropFirst("claim:".count)
            let parts = rest.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts.first, !name.isEmpty else { return nil }
            if parts.count == 2 {
                guard !parts[1].isEmpty else { return nil }
                self = .claim(name: String(name), value: String(parts[1]))
            } else {
                self = .claim(name: String(name), value: nil)
            }
        }
    }

    public var description: String {
        switch self {
        case .anyone: "anyone"
        case .authenticated: "authenticated"
        case .server: "server"
        case .claim(let name, let value): "claim:" + name + (value.map { "=" + $0 } ?? "")
        }
    }

    /// Whether a client session with `identity` (nil: anonymous) has the permission.
    public func admits(_ identity: ClientIdentity?) -> Bool {
        switch self {
        case .anyone: return true
        case .authenticated: return identity != nil
        case .claim(let name, let value): return identity?.hasClaim(name, value: value) ?? false
        case .server: return false
        }
    }
}

/// Maps channel patterns to options; the most specific pattern wins: a literal name beats a
/// wildcard, a longer prefix beats a shorter one, and `*` beats `**` at the same prefix.
public struct ChannelPolicyTable: Sendable {
    public private(set) var entries: [(pattern: ChannelPattern, options: ChannelPolicy)] = []
    /// Whether any pattern sets `publish`, so that publishes skip the lookup otherwise.
    public private(set) var restrictsPublish = false
    /// Whether any pattern sets `subscribe`.
    public private(set) var restrictsSubscribe = false
    /// Whether some pattern lets anonymous clients in (`"anyone"` set explicitly): then, with
    /// tokens required, a handshake without a token is admitted as an anonymous session.
    public private(set) var admitsAnonymous = false

    public init() {}

    public init(_ entries: [(ChannelPattern, ChannelPolicy)]) {
        for (pattern, options) in entries { set(pattern, options) }
    }

    public var isEmpty: Bool { entries.isEmpty }

    public mutating func set(_ pattern: ChannelPattern, _ options: ChannelPolicy) {
        entries.removeAll { $0.pattern == pattern }
        entries.append((pattern, options))
        entries.sort { Self.specificity($0.pattern) > Self.specificity($1.pattern) }
        restrictsPublish = entries.contains { $0.options.publish != nil }
        restrictsSubscribe = entries.contains { $0.options.subscribe != nil }
        admitsAnonymous = entries.contains { $0.options.publish == .anyone || $0.options.subscribe == .anyone }
    }

    /// Who may publish to `channel`: the most specific pattern that **sets** `publish` decides,
    /// so a literal entry that only retains (`/stocks/AAPL: {retain: true}`) does not lift a
    /// `/stocks/**: {publish: server}` above it. nil: no pattern sets it.
    public func publishPermission(for channel: ChannelName) -> ChannelPermission? {
        guard restrictsPublish else { return nil }
        return entries.first(where: { $0.options.publish != nil && $0.pattern.matches(channel) })?.options.publish
    }

    /// The `subscribe` permissions a subscription to `pattern` needs, one for each rule that
    /// decides for some channel it could match (`default` for channels no pattern sets it
    /// for). For a concrete channel the most specific pattern that sets `subscribe` decides, as
    /// for `publish`; a wildcard needs what every channel it matches needs, so `/**` cannot
    /// reach a channel that `/private/**` closes.
    public func subscribePermissions(for pattern: ChannelPattern, default fallback: ChannelPermission) -> [ChannelPermission] {
        guard restrictsSubscribe else { return [fallback] }
        var needed: [ChannelPermission] = []
        // Most specific first: once an entry covers the whole subscription, the entries after
        // it (less specific) and the default decide for none of its channels.
        for entry in entries {
            guard let permission = entry.options.subscribe, entry.pattern.overlaps(pattern) else { continue }
            needed.append(permission)
            if entry.pattern == pattern || entry.pattern.covers(pattern) { return needed }
        }
        needed.append(fallback)
        return needed
    }

    /// The options of the most specific pattern matching `channel`, or nil.
    public func options(for channel: ChannelName) -> ChannelPolicy? {
        entries.first(where: { $0.pattern.matches(channel) })?.options
    }

    static func specificity(_ pattern: ChannelPattern) -> Int {
        let kind: Int
        switch pattern.kind {
        case .literal: kind = 2
        case .singleWildcard: kind = 1
        case .deepWildcard: kind = 0
        }
        return pattern.prefix.count * 4 + kind
    }
}

extension ChannelPolicyTable {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Reads the `channels` object of a configuration file:
    /// `{"/stocks/**": {"retain": true, "historySize": 1000, "historyTTL": "24h", ...}}`.
    public static func parse(_ channels: JSONObject) throws(ParseError) -> ChannelPolicyTable {
        var table = ChannelPolicyTable()
        for (key, value) in channels.members {
            guard let pattern = ChannelPattern(key), !pattern.isMeta, !pattern.isService else {
                throw ParseError(description: "channels: '\(key)' is not a valid channel pattern")
            }
            guard case .object(let object) = value else {
                throw ParseError(description: "channels.\(key): expected an object of options")
            }
            var options = ChannelPolicy()
            for (name, setting) in object.members {
                func bool() throws(ParseError) -> Bool {
                    guard let b = setting.boolValue else { throw ParseError(description: "channels.\(key).\(name): expected true or false") }
                    return b
                }
                func duration() throws(ParseError) -> Int64 {
                    if let ms = DurationText.milliseconds(setting) { return ms }
                    throw ParseError(description: "channels.\(key).\(name): expected a duration such as \"30s\", \"15m\", \"24h\" or milliseconds")
                }
                switch name {
                case "retain": options.retain = try bool()
                case "persist": options.persist = try bool()
                case "durable": options.durable = try bool()
                case "historySize":
                    guard let n = setting.intValue, n >= 0, n <= 1_000_000 else {
                        throw ParseError(description: "channels.\(key).historySize: expected an integer from 0 to 1000000")
                    }
                    options.historySize = n
                case "slowConsumer":
                    guard let text = setting.stringValue, let policy = SlowConsumerPolicy(rawValue: text) else {
                        throw ParseError(description: "channels.\(key).slowConsumer: expected one of \(SlowConsumerPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    options.slowConsumer = policy
                case "maxFrequency":
                    guard let f = setting.doubleValue, f > 0, f <= 1_000 else {
                        throw ParseError(description: "channels.\(key).maxFrequency: expected updates per second, more than 0 and at most 1000")
                    }
                    options.maxFrequency = f
                case "publish", "subscribe":
                    let allowed = name == "publish" ? "anyone, authenticated, server, claim:NAME or claim:NAME=VALUE" : "anyone, authenticated, claim:NAME or claim:NAME=VALUE"
                    guard let text = setting.stringValue, let permission = ChannelPermission(text), name == "publish" || permission != .server else {
                        let got = setting.stringValue.map { "'\($0)'" } ?? "not a string"
                        throw ParseError(description: "channels.\(key).\(name): expected one of \(allowed), got \(got)")
                    }
                    if name == "publish" { options.publish = permission } else { options.subscribe = permission }
                case "historyTTL": options.historyTTLMilliseconds = try duration()
                case "retainedTTL": options.retainedTTLMilliseconds = try duration()
                default:
                    throw ParseError(description: "channels.\(key): unknown option '\(name)' (known: retain, historySize, historyTTL, retainedTTL, persist, durable, slowConsumer, maxFrequency, publish, subscribe)")
                }
            }
            if options.durable { options.persist = true }
            table.set(pattern, options)
        }
        return table
    }
}

/// Durations in configuration files: `"500ms"`, `"30s"`, `"15m"`, `"24h"`, `"7d"`, or a
/// number of milliseconds.
public enum DurationText {
    public static func milliseconds(_ value: JSONValue) -> Int64? {
        if let n = value.intValue { return n > 0 ? Int64(n) : nil }
        guard let text = value.stringValue else { return nil }
        let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if let n = Int64(number), n > 0, n < Int64.max / factor { return n * factor }
        }
        return nil
    }
}
