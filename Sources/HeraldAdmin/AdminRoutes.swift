import Foundation
import HTTPTypes
import HeraldCore
import HeraldProtocol
import Hummingbird
import NIOCore
import Synchronization

/// The admin API's endpoints. Channel names follow their resource prefix verbatim
/// (`/v1/clients/{clientId}`), so curl needs no encoding.
struct AdminRoutes: Sendable {
    let broker: Broker
    let configuration: AdminConfiguration
    let dataPlane: AdminDataPlane
    let started = ContinuousClock.now
    let rates = RateSampler()
    let metrics: AdminMetrics

    func add(to router: Router<BasicRequestContext>) {
        route(router, "/", get: { _, _ in Dashboard.page() })
        route(router, "/dashboard.js", get: { _, _ in Dashboard.script() })
        route(router, "/dashboard.css", get: { _, _ in Dashboard.style() })
        route(router, "/v1/health", get: { _, _ in AdminJSON.response(.object(JSONObject([("status", .string("ok"))]))) })
        route(router, "/v1/ready", get: { _, _ in try ready() })
        route(router, "/v1/stats", get: { _, _ in stats() })
        route(router, "/v1/nodes", get: { _, _ in try await nodes() })
        route(router, "/metrics", get: { _, _ in prometheus() })
        route(router, "/v1/publish", post: { request, _ in try await publish(request) })
        route(router, "/v1/channels", get: { request, _ in try channels(request) })
        route(router, "/v1/channels/**", get: { _, context in try channel(context) })
        route(router, "/v1/history/**", get: { request, context in try history(request, context) }, delete: { _, context in try clearHistory(context) })
        route(router, "/v1/retained/**", delete: { _, context in try clearRetained(context) })
        route(router, "/v1/clients", get: { request, _ in try clients(request) })
        route(router, "/v1/clients/:clientId", get: { _, context in try client(context) }, delete: { request, context in try kick(request, context) })
        route(router, "/v1/clients/:clientId/subscriptions", post: { request, context in try await subscribe(request, context) })
        route(router, "/v1/clients/:clientId/subscriptions/**", delete: { _, context in try unsubscribe(context) })
    }

    /// The methods `path` serves, or nil if it is not an endpoint.
    static func allowedMethods(_ path: String) -> String? {
        switch path {
        case "/", "/dashboard.js", "/dashboard.css", "/v1/health", "/v1/ready", "/v1/stats", "/v1/nodes", "/v1/channels", "/v1/clients", "/metrics": return "GET"
        case "/v1/publish": return "POST"
        default: break
        }
        let rest = { (prefix: String) -> Substring? in path.hasPrefix(prefix) && path.count > prefix.count ? path.dropFirst(prefix.count) : nil }
        if rest("/v1/channels/") != nil { return "GET" }
        if rest("/v1/history/") != nil { return "GET, DELETE" }
        if rest("/v1/retained/") != nil { return "DELETE" }
        if let id = rest("/v1/clients/") {
            let parts = id.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 1 { return "GET, DELETE" }
            if parts.count == 2, parts[1] == "subscriptions" { return "POST" }
            if parts.count == 3, parts[1] == "subscriptions", !parts[2].isEmpty { return "DELETE" }
        }
        return nil
    }

    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    /// Registers the handlers of `path`, and 405 with `Allow` for every other method.
    func route(_ router: Router<BasicRequestContext>, _ path: RouterPath, get: Handler? = nil, post: Handler? = nil, delete: Handler? = nil) {
        let handlers: [(HTTPRequest.Method, Handler?)] = [(.get, get), (.post, post), (.delete, delete)]
        let allow = handlers.filter { $0.1 != nil }.map(\.0.rawValue).joined(separator: ", ")
        for (method, handler) in handlers {
            router.on(path, method: method, use: handler ?? { _, _ in throw AdminError.methodNotAllowed(allow: allow) })
        }
        for method in [HTTPRequest.Method.put, .patch, .head, .options, .trace, .connect] {
            router.on(path, method: method) { _, _ -> Response in throw AdminError.methodNotAllowed(allow: allow) }
        }
    }

    // MARK: Probes and stats

    func ready() throws -> Response {
        guard dataPlane.isReady() else {
            throw AdminError(.serviceUnavailable, code: "not_ready", message: "the data listener is not serving yet")
        }
        guard broker.isClusterReady else {
            throw AdminError(.serviceUnavailable, code: "not_ready", message: "the cluster's message store (PostgreSQL) is unreachable")
        }
        return AdminJSON.response(.object(JSONObject([("status", .string("ready"))])))
    }

    /// The cluster's nodes (their last heartbeats, with their statistics) and the totals over
    /// them; a single node lists itself.
    func nodes() async throws -> Response {
        let nodes: [ClusterNode]
        if broker.clusterNode != nil {
            do {
                nodes = try await broker.clusterNodes()
            } catch {
                throw AdminError(.serviceUnavailable, code: "cluster_unavailable", message: "the cluster's message store (PostgreSQL) is unreachable: \(error)")
            }
        } else {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let uptime = ContinuousClock.now - started
            nodes = [ClusterNode(id: "local", startedAtMilliseconds: now - Int64(uptime.seconds * 1000), heartbeatAtMilliseconds: now, statistics: broker.statisticsJSON)]
        }
        var totals: [String: Int] = [:]
        for node in nodes {
            for (key, value) in node.statistics.members { if let n = value.intValue { totals[key, default: 0] += n } }
        }
        let list: [JSONValue] = nodes.map { node in
            .object(JSONObject([
                ("id", .string(node.id)),
                ("startedAt", .string(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(node.startedAtMilliseconds) / 1000)))),
                ("heartbeatAt", .string(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(node.heartbeatAtMilliseconds) / 1000)))),
                ("statistics", .object(node.statistics)),
            ]))
        }
        return AdminJSON.response(.object(JSONObject([
            ("engine", .string(broker.clusterNode == nil ? "single" : "postgres")),
            ("self", .string(broker.clusterNode ?? "local")),
            ("nodes", .array(list)),
            ("totals", .object(JSONObject(totals.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))),
        ])))
    }

    func stats() -> Response {
        let s = broker.statistics
        let connections = dataPlane.connections()
        let uptime = ContinuousClock.now - started
        let perSecond = rates.sample(published: s.published, delivered: s.delivered)
        let body = JSONObject.compact([
            ("version", .string(HeraldVersion.current)),
            ("uptimeSeconds", .number(String(format: "%.3f", uptime.seconds))),
            ("rssBytes", ProcessMemory.residentBytes().map { .int($0) }),
            ("connections", .object(JSONObject(connections.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) } + [("total", .int(connections.values.reduce(0, +)))]))),
            ("sessions", .int(s.sessions)),
            ("subscriptions", .int(s.subscriptions)),
            ("channels", .object(JSONObject([("logged", .int(s.loggedChannels))]))),
            ("messages", .object(JSONObject([
                ("published", .object(JSONObject([("total", .int(s.published)), ("perSecond", .number(String(format: "%.1f", perSecond.published)))]))),
                ("delivered", .object(JSONObject([("total", .int(s.delivered)), ("perSecond", .number(String(format: "%.1f", perSecond.delivered)))]))),
            ]))),
            ("bytes", dataPlane.traffic.map { traffic in
                let (received, sent) = traffic()
                return .object(JSONObject([("received", .int(received)), ("sent", .int(sent))]))
            }),
            ("drops", .object(JSONObject([("conflatedOrDropped", .int(s.dropped)), ("slowConsumerDisconnects", .int(s.slowConsumers))]))),
            ("sessionsOpened", .int(s.sessionsOpened)),
            ("sessionsClosed", .int(s.sessionsClosed)),
            ("sessionsExpired", .int(s.sessionsExpired)),
            ("errors", .int(s.errors)),
            ("store", .object(JSONObject([("writes", .int(s.storeWrites)), ("commits", .int(s.storeCommits)), ("failures", .int(s.storeFailures))]))),
            ("limits", .object(JSONObject(broker.limits.all.map { ($0.limit, .int($0.count)) }))),
        ])
        return AdminJSON.response(.object(body))
    }

    func prometheus() -> Response {
        let uptime = ContinuousClock.now - started
        let text = metrics.scrape(broker: broker, connections: dataPlane.connections(), traffic: dataPlane.traffic?(), uptimeSeconds: uptime.seconds)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
    }

    // MARK: Publish

    /// `{"channel", "data"}`, `{"channels": […], "data"}` or `{"messages": [{"channel", "data"}, …]}`.
    func publish(_ request: Request) async throws -> Response {
        let body = try await AdminJSON.object(of: request, maxBytes: configuration.maxBodyBytes)
        var targets: [(ChannelName, JSONValue)] = []
        func channel(_ value: JSONValue?, at path: String) throws -> ChannelName {
            guard let text = value?.stringValue else { throw AdminError.badRequest("\(path) must be a channel name (a string)") }
            guard let name = ChannelName(text) else { throw AdminError.badRequest("\(path): invalid channel name '\(text)' (an absolute name such as /stocks/AAPL, without wildcards)") }
            return name
        }
        let keys = Set(body.members.map(\.key))
        if keys.contains("messages") {
            guard keys == ["messages"] else { throw AdminError.badRequest("messages cannot be combined with \(keys.subtracting(["messages"]).sorted().joined(separator: ", "))") }
            guard case .array(let items)? = body["messages"], !items.isEmpty else { throw AdminError.badRequest("messages must be a non-empty array") }
            for (i, item) in items.enumerated() {
                guard case .object(let message) = item else { throw AdminError.badRequest("messages[\(i)] must be an object") }
                if let unknown = Set(message.members.map(\.key)).subtracting(["channel", "data"]).first { throw AdminError.badRequest("messages[\(i)]: unknown field '\(unknown)'") }
                guard let data = message["data"] else { throw AdminError.badRequest("messages[\(i)].data is required") }
                targets.append((try channel(message["channel"], at: "messages[\(i)].channel"), data))
            }
        } else {
            if let unknown = keys.subtracting(["channel", "channels", "data"]).first { throw AdminError.badRequest("unknown field '\(unknown)' (known: channel, channels, data, messages)") }
            guard let data = body["data"] else { throw AdminError.badRequest("data is required") }
            switch (body["channel"], body["channels"]) {
            case (let one?, nil):
                targets.append((try channel(one, at: "channel"), data))
            case (nil, .array(let many)?) where !many.isEmpty:
                for (i, name) in many.enumerated() { targets.append((try channel(name, at: "channels[\(i)]"), data)) }
            case (nil, _?):
                throw AdminError.badRequest("channels must be a non-empty array of channel names")
            case (nil, nil):
                throw AdminError.badRequest("channel (or channels, or messages) is required")
            case (_?, _?):
                throw AdminError.badRequest("give channel or channels, not both")
            }
        }
        guard targets.count <= configuration.maxMessagesPerPublish else {
            throw AdminError(.badRequest, code: "too_many_messages", message: "more than \(configuration.maxMessagesPerPublish) messages in one publish")
        }
        var results: [JSONValue] = []
        for (name, data) in targets {
            var bytes = ByteBuffer()
            bytes.writeJSON(data)
            // The client's limit applies to an operator's message too.
            let result: Broker.ServerPublishResult
            if bytes.readableBytes > broker.configuration.maxMessageBytes {
                result = .refused(.messageTooLarge(limit: broker.configuration.maxMessageBytes))
            } else {
                result = await broker.publishFromServer(name, data: bytes)
            }
            switch result {
            case .published(let offset, let epoch):
                results.append(.object(JSONObject.compact([
                    ("channel", .string(name.rawValue)),
                    ("offset", offset.map { .number(String($0)) }),
                    ("epoch", epoch.map { .string($0) }),
                ])))
            case .refused(let error):
                results.append(.object(JSONObject([
                    ("channel", .string(name.rawValue)),
                    ("error", .object(JSONObject([("code", .string(String(error.code))), ("message", .string(error.description))]))),
                ])))
            }
        }
        return AdminJSON.response(.object(JSONObject([("results", .array(results))])))
    }

    // MARK: Channels and history

    /// `limit` from the query: 1…`maxPageSize`, `default` when absent.
    func limit(_ request: Request, default value: Int = 100) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return value }
        guard let limit = Int(text), (1...configuration.maxPageSize).contains(limit) else {
            throw AdminError.badRequest("limit must be an integer from 1 to \(configuration.maxPageSize)")
        }
        return limit
    }

    func channels(_ request: Request) throws -> Response {
        let limit = try limit(request)
        let pattern = try Self.optional(request, "pattern", "channel pattern", ChannelPattern.init)
        switch request.uri.queryParameters["sort"] {
        case nil, "name":
            break
        case "subscribers":
            // The top of a ranking that changes all the time: one page; a cursor (which pages
            // in name order) has nothing to continue and is ignored, as the contract says.
            let top = broker.busiestChannels(matching: pattern, limit: limit)
            return AdminJSON.response(.object(JSONObject([("channels", .array(top.map { .object(Self.describe($0, detail: false)) }))])))
        case let other?:
            throw AdminError.badRequest("sort must be name or subscribers (got '\(other)')")
        }
        let (page, more, last) = broker.channels(matching: pattern, after: request.uri.queryParameters["cursor"].map(String.init), limit: limit)
        return AdminJSON.response(.object(JSONObject.compact([
            ("channels", .array(page.map { .object(Self.describe($0, detail: false)) })),
            // The last name looked at, even if its channel went away meanwhile.
            ("nextCursor", more ? last.map { .string($0) } : nil),
        ])))
    }

    func channel(_ context: BasicRequestContext) throws -> Response {
        let name = try channelName(context)
        guard let info = broker.channel(name) else { throw AdminError.notFound("no channel '\(name)' (it has no subscriber and keeps nothing)") }
        return AdminJSON.response(.object(Self.describe(info, detail: true)))
    }

    func history(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let name = try channelName(context)
        var since: UInt64?
        if let text = request.uri.queryParameters["since"] {
            guard let offset = UInt64(text) else { throw AdminError.badRequest("since must be an offset (a non-negative integer)") }
            since = offset
        }
        guard let (epoch, messages) = broker.history(name, after: since, limit: try limit(request)) else {
            throw AdminError.notFound("channel '\(name)' keeps no history or retained value")
        }
        return AdminJSON.response(.object(JSONObject([
            ("channel", .string(name.rawValue)),
            ("epoch", .string(epoch)),
            ("messages", .array(messages.map { .object(Self.describe($0)) })),
        ])))
    }

    func clearHistory(_ context: BasicRequestContext) throws -> Response {
        let name = try channelName(context)
        guard let dropped = broker.clearHistory(name) else { throw AdminError.notFound("channel '\(name)' keeps no history") }
        return AdminJSON.response(.object(JSONObject([("channel", .string(name.rawValue)), ("deleted", .int(dropped))])))
    }

    func clearRetained(_ context: BasicRequestContext) throws -> Response {
        let name = try channelName(context)
        guard let existed = broker.clearRetained(name) else { throw AdminError.notFound("channel '\(name)' keeps no retained value") }
        return AdminJSON.response(.object(JSONObject([("channel", .string(name.rawValue)), ("deleted", .bool(existed))])))
    }

    /// The channel name or pattern after the resource prefix (`/v1/channels/stocks/AAPL` →
    /// `/stocks/AAPL`). The path comes percent-encoded (a space is %20): the name is what it
    /// decodes to.
    static func pathChannel(_ context: BasicRequestContext) -> String {
        let raw = "/" + context.parameters.getCatchAll().joined(separator: "/")
        return raw.removingPercentEncoding ?? raw
    }

    /// `query[key]` parsed by `parse`, nil if absent; 400 naming `what` if it does not parse.
    static func optional<T>(_ request: Request, _ key: String, _ what: String, _ parse: (String) -> T?) throws -> T? {
        guard let text = request.uri.queryParameters[Substring(key)].map({ String($0) }) else { return nil }
        guard let value = parse(text) else { throw AdminError.badRequest("\(key): invalid \(what) '\(text)'") }
        return value
    }

    func channelName(_ context: BasicRequestContext) throws -> ChannelName {
        let text = Self.pathChannel(context)
        guard let name = ChannelName(text) else { throw AdminError.badRequest("invalid channel name '\(text)' (an absolute name such as /stocks/AAPL, without wildcards)") }
        return name
    }

    static func describe(_ info: Broker.ChannelInfo, detail: Bool) -> JSONObject {
        var members: [(String, JSONValue?)] = [
            ("name", .string(info.name)),
            ("subscribers", .int(info.subscribers)),
            ("retained", .bool(info.retained != nil)),
            ("lastOffset", info.lastOffset.map { .number(String($0)) }),
            ("epoch", info.epoch.map { .string($0) }),
        ]
        if detail {
            members.append(("historyCount", .int(info.historyCount)))
            members.append(("retainedMessage", info.retained.map { .object(describe($0)) }))
            members.append(("policy", info.policy.map { .object(describe($0)) }))
        }
        return JSONObject.compact(members)
    }

    static func describe(_ message: StoredMessage) -> JSONObject {
        JSONObject.compact([
            ("offset", .number(String(message.offset))),
            ("timestampMilliseconds", .int(Int(message.timestampMilliseconds))),
            ("data", try? JSONParser.parse(String(buffer: message.data))),
            ("ext", message.ext.map { .object($0) }),
        ])
    }

    static func describe(_ policy: ChannelPolicy) -> JSONObject {
        JSONObject.compact([
            ("retain", .bool(policy.retain)),
            ("historySize", .int(policy.historySize)),
            ("historyTTLMilliseconds", policy.historyTTLMilliseconds.map { .int(Int($0)) }),
            ("retainedTTLMilliseconds", policy.retainedTTLMilliseconds.map { .int(Int($0)) }),
            ("persist", .bool(policy.persist)),
            ("durable", .bool(policy.durable)),
            ("slowConsumer", .string(policy.slowConsumer.rawValue)),
            ("maxFrequency", policy.maxFrequency.map { .number(String($0)) }),
        ])
    }

    // MARK: Clients

    func clients(_ request: Request) throws -> Response {
        let limit = try limit(request)
        let channel = try Self.optional(request, "channel", "channel name", ChannelName.init)
        let cursor = request.uri.queryParameters["cursor"].map(String.init)
        let page = broker.sessions(after: cursor, limit: limit + 1, receiving: channel)
        let shown = page.prefix(limit)
        let body = JSONObject.compact([
            ("clients", .array(shown.map { .object(Self.describe($0)) })),
            ("nextCursor", page.count > limit ? shown.last.map { .string($0.id) } : nil),
        ])
        return AdminJSON.response(.object(body))
    }

    func client(_ context: BasicRequestContext) throws -> Response {
        AdminJSON.response(.object(Self.describe(try session(context))))
    }

    /// Disconnects the client: a WebSocket is closed with 4002 and the reason, a held
    /// long-poll connect is answered with the reason and `reconnect: none`.
    func kick(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let session = try session(context)
        let reason = CloseReason.kicked(request.uri.queryParameters["reason"].map(String.init) ?? "kicked")
        broker.removeSession(session, reason: reason)
        return AdminJSON.response(.object(JSONObject([("clientId", .string(session.id)), ("disconnected", .bool(true)), ("reason", .string(reason.name))])))
    }

    /// `{"channel": PATTERN}`: subscribes the client from the server side (live messages only).
    func subscribe(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let session = try session(context)
        let body = try await AdminJSON.object(of: request, maxBytes: configuration.maxBodyBytes)
        if let unknown = Set(body.members.map(\.key)).subtracting(["channel"]).first { throw AdminError.badRequest("unknown field '\(unknown)' (known: channel)") }
        guard let text = body["channel"]?.stringValue else { throw AdminError.badRequest("channel is required (a channel or pattern)") }
        guard let pattern = ChannelPattern(text) else { throw AdminError.badRequest("channel: invalid channel pattern '\(text)'") }
        switch broker.subscribeFromServer(session, to: pattern) {
        case nil: break
        case .forbidden(let error)?: throw AdminError(.forbidden, code: "forbidden_channel", message: error.description)
        case .unknownClient(let error)?: throw AdminError(.notFound, code: "not_found", message: error.description)
        case .tooMany(let error)?: throw AdminError(.conflict, code: "too_many_subscriptions", message: error.description)
        }
        return AdminJSON.response(.object(Self.describe(session)))
    }

    func unsubscribe(_ context: BasicRequestContext) throws -> Response {
        let session = try session(context)
        let text = Self.pathChannel(context)
        guard let pattern = ChannelPattern(text) else { throw AdminError.badRequest("invalid channel pattern '\(text)'") }
        guard broker.unsubscribeFromServer(session, from: pattern) else {
            throw AdminError.notFound("client '\(session.id)' has no subscription to '\(text)'")
        }
        return AdminJSON.response(.object(Self.describe(session)))
    }

    func session(_ context: BasicRequestContext) throws -> Session {
        let id = context.parameters.get("clientId") ?? ""
        guard let session = broker.session(id: id) else { throw AdminError.notFound("no client '\(id)'") }
        return session
    }

    static func describe(_ session: Session) -> JSONObject {
        JSONObject.compact([
            ("clientId", .string(session.id)),
            ("user", session.identity?.subject.map { .string($0) }),
            ("transport", session.connectionType.map { .string($0.rawValue) }),
            ("subscriptions", .array(session.subscriptions.map { .string($0) })),
            ("remoteAddress", session.remoteAddress.flatMap { address in
                address.ipAddress.map { ip in .string(ip.contains(":") ? "[\(ip)]:\(address.port ?? 0)" : "\(ip):\(address.port ?? 0)") }
            }),
            ("pendingBytes", .int(session.pendingBytes)),
            ("dropped", .int(session.droppedMessages)),
            ("holdingConnect", .bool(session.isHoldingConnect)),
        ])
    }
}

/// Messages per second between two `/v1/stats` reads at least a second apart.
final class RateSampler: Sendable {
    struct Sample {
        var at = ContinuousClock.now
        var published = 0
        var delivered = 0
        var rates: (published: Double, delivered: Double) = (0, 0)
    }
    let last = Mutex(Sample())

    func sample(published: Int, delivered: Int) -> (published: Double, delivered: Double) {
        last.withLock { s in
            let now = ContinuousClock.now
            let elapsed = now - s.at
            guard elapsed >= .seconds(1) else { return s.rates }
            let seconds = elapsed.seconds
            s.rates = (Double(published - s.published) / seconds, Double(delivered - s.delivered) / seconds)
            s = Sample(at: now, published: published, delivered: delivered, rates: s.rates)
            return s.rates
        }
    }
}

/// The process's resident set size, from /proc/self/statm (Linux).
enum ProcessMemory {
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
