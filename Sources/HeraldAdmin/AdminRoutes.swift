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

    func add(to router: Router<BasicRequestContext>) {
        route(router, "/v1/health", get: { _, _ in AdminJSON.response(.object(JSONObject([("status", .string("ok"))]))) })
        route(router, "/v1/ready", get: { _, _ in try ready() })
        route(router, "/v1/stats", get: { _, _ in stats() })
        route(router, "/v1/publish", post: { request, _ in try await publish(request) })
        route(router, "/v1/clients", get: { request, _ in try clients(request) })
        route(router, "/v1/clients/:clientId", get: { _, context in try client(context) }, delete: { request, context in try kick(request, context) })
    }

    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    /// Registers the handlers of `path`, and 405 with `Allow` for every other method.
    func route(_ router: Router<BasicRequestContext>, _ path: RouterPath, get: Handler? = nil, post: Handler? = nil, delete: Handler? = nil) {
        let handlers: [(HTTPRequest.Method, Handler?)] = [(.get, get), (.post, post), (.delete, delete)]
        let allow = handlers.filter { $0.1 != nil }.map(\.0.rawValue).joined(separator: ", ")
        for (method, handler) in handlers {
            router.on(path, method: method, use: handler ?? { _, _ in throw AdminError.methodNotAllowed(allow: allow) })
        }
        for method in [HTTPRequest.Method.put, .patch] {
            router.on(path, method: method) { _, _ -> Response in throw AdminError.methodNotAllowed(allow: allow) }
        }
    }

    // MARK: Probes and stats

    func ready() throws -> Response {
        guard dataPlane.isReady() else {
            throw AdminError(.serviceUnavailable, code: "not_ready", message: "the data listener is not serving yet")
        }
        return AdminJSON.response(.object(JSONObject([("status", .string("ready"))])))
    }

    func stats() -> Response {
        let s = broker.statistics
        let connections = dataPlane.connections()
        let uptime = ContinuousClock.now - started
        let perSecond = rates.sample(published: s.published, delivered: s.delivered)
        let body = JSONObject.compact([
            ("version", .string(HeraldVersion.current)),
            ("uptimeSeconds", .number(String(format: "%.3f", Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18))),
            ("rssBytes", ProcessMemory.residentBytes().map { .int($0) }),
            ("connections", .object(JSONObject(connections.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) } + [("total", .int(connections.values.reduce(0, +)))]))),
            ("sessions", .int(s.sessions)),
            ("subscriptions", .int(s.subscriptions)),
            ("channels", .object(JSONObject([("logged", .int(s.loggedChannels))]))),
            ("messages", .object(JSONObject([
                ("published", .object(JSONObject([("total", .int(s.published)), ("perSecond", .number(String(format: "%.1f", perSecond.published)))]))),
                ("delivered", .object(JSONObject([("total", .int(s.delivered)), ("perSecond", .number(String(format: "%.1f", perSecond.delivered)))]))),
            ]))),
            ("drops", .object(JSONObject([("conflatedOrDropped", .int(s.dropped)), ("slowConsumerDisconnects", .int(s.slowConsumers))]))),
            ("sessionsOpened", .int(s.sessionsOpened)),
            ("sessionsClosed", .int(s.sessionsClosed)),
            ("sessionsExpired", .int(s.sessionsExpired)),
            ("errors", .int(s.errors)),
            ("store", .object(JSONObject([("writes", .int(s.storeWrites)), ("commits", .int(s.storeCommits)), ("failures", .int(s.storeFailures))]))),
        ])
        return AdminJSON.response(.object(body))
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
            throw AdminError(.contentTooLarge, code: "too_many_messages", message: "more than \(configuration.maxMessagesPerPublish) messages in one publish")
        }
        var results: [JSONValue] = []
        for (name, data) in targets {
            var bytes = ByteBuffer()
            bytes.writeJSON(data)
            switch await broker.publishFromServer(name, data: bytes) {
            case .published(let offset, let epoch):
                results.append(.object(JSONObject.compact([
                    ("channel", .string(name.rawValue)),
                    ("offset", offset.map { .int(Int($0)) }),
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

    // MARK: Clients

    func clients(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters
        var limit = 100
        if let text = query["limit"] {
            guard let value = Int(text), (1...configuration.maxPageSize).contains(value) else {
                throw AdminError.badRequest("limit must be an integer from 1 to \(configuration.maxPageSize)")
            }
            limit = value
        }
        var channel: ChannelName?
        if let text = query["channel"] {
            guard let name = ChannelName(String(text)) else { throw AdminError.badRequest("channel: invalid channel name '\(text)'") }
            channel = name
        }
        let cursor = query["cursor"].map(String.init)
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

    func session(_ context: BasicRequestContext) throws -> Session {
        let id = context.parameters.get("clientId") ?? ""
        guard let session = broker.session(id: id) else { throw AdminError.notFound("no client '\(id)'") }
        return session
    }

    static func describe(_ session: Session) -> JSONObject {
        JSONObject.compact([
            ("clientId", .string(session.id)),
            ("transport", session.connectionType.map { .string($0.rawValue) }),
            ("subscriptions", .array(session.subscriptions.map { .string($0) })),
            ("pendingBytes", .int(session.pendingBytes)),
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
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
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
