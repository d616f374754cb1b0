import Foundation
public import HeraldCore
public import HeraldProtocol
public import Logging
import NIOCore
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// Herald's cluster engine on PostgreSQL: several `herald serve` nodes on one database act as
/// one broker.
///
/// - **Offsets.** A publish to a channel with a log goes into `herald_messages` in the same
///   transaction that advances the channel's `last_offset` in `herald_channels`, so every
///   node agrees. Publishes are batched: one transaction, and one `NOTIFY` per few
///   milliseconds per node, not per message.
/// - **Fan-out.** The transaction carries the batch in `NOTIFY herald` payloads (under the
///   8,000-byte limit; a larger message is referenced by its offset and read from the table).
///   PostgreSQL delivers notifications in commit order, so every node sees every channel in
///   offset order; each node applies them to its logs and delivers to its own subscribers.
///   Messages on channels without a log are delivered by their node at once, and to the
///   others through the same batches.
/// - **Outages.** While PostgreSQL is unreachable, `isReady` is false: publishes to channels
///   with a log are refused (`503:cluster:Message store unavailable`), live traffic on each
///   node goes on. The engine reconnects by itself, `LISTEN`s again, and reads what it missed
///   from the tables before following the stream again.
/// - **Membership.** Each node writes a heartbeat to `herald_nodes` every 2 s; `nodes()` lists
///   those seen in the last 10 s.
public final class PostgresEngine: ClusterEngine, Service {
    public let node: String
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let state = Mutex(State())
    private let startedAt = Date()

    /// How long a batch waits for company after its first message.
    static let linger: Duration = .milliseconds(2)
    /// A notification payload stays under PostgreSQL's 8,000 bytes with room to spare.
    static let payloadLimit = 7_800
    static let channelName = "herald"

    struct Pending {
        var append: ClusterAppend
        var completion: @Sendable (Result<UInt64, any Error>) -> Void
    }

    struct State {
        var epoch = ""
        var ready = false
        var appends: [Pending] = []
        var live: [Delivery] = []
        /// The last offset handed to the broker, per channel (for the catch-up after a reconnect).
        var delivered: [String: UInt64] = [:]
        var deliver: (@Sendable ([ClusterMessage]) -> Void)?
        var statistics: (@Sendable () -> JSONObject)?
        var sequence = 0
        var connections: Connections?
        /// Wakes the flusher of the current connection when something is queued.
        var wake: AsyncStream<Void>.Continuation?
    }

    /// The two connections: one writes batches in transactions, one `LISTEN`s (and reads).
    struct Connections: @unchecked Sendable {
        var writer: PostgresConnection
        var listener: PostgresConnection
        var notifications: AsyncThrowingStream<String, any Error>
        var listening: Task<Void, Never>
    }

    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database`.
    ///   - node: this node's name, unique in the cluster (default: a random one).
    public convenience init(url: String, node: String? = nil, logger: Logger) throws {
        try self.init(configuration: Self.configuration(url: url), node: node, logger: logger)
    }

    public init(configuration: PostgresConnection.Configuration, node: String? = nil, logger: Logger) {
        self.configuration = configuration
        self.node = node ?? "node-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.logger = logger
    }

    /// Reads `postgres://user:password@host:port/database` (also `postgresql://`).
    public static func configuration(url: String) throws -> PostgresConnection.Configuration {
        guard let parts = URLComponents(string: url), ["postgres", "postgresql"].contains(parts.scheme ?? ""), let host = parts.host, !host.isEmpty else {
            throw PostgresEngineError("not a PostgreSQL URL (postgres://user:password@host:port/database): \(url)")
        }
        let database = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        var configuration = PostgresConnection.Configuration(
            host: host, port: parts.port ?? 5432, username: parts.user ?? "postgres",
            password: parts.password, database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    public var epoch: String { state.withLock { $0.epoch } }
    public var isReady: Bool { state.withLock { $0.ready } }

    /// What this node reports in its heartbeat (`nodes()`), e.g. the broker's statistics.
    public func reportStatistics(_ provider: @escaping @Sendable () -> JSONObject) {
        state.withLock { $0.statistics = provider }
    }

    // MARK: Start

    public func start(restore: @escaping @Sendable ([StoredChannel]) -> Void, deliver: @escaping @Sendable ([ClusterMessage]) -> Void) async throws {
        let connections = try await connect()
        do {
            try await createSchema(connections.writer)
            let epoch = try await loadEpoch(connections.writer)
            let channels = try await snapshot(connections.listener)
            state.withLock { state in
                state.epoch = epoch
                state.deliver = deliver
                for channel in channels { state.delivered[channel.name] = channel.lastOffset }
                state.connections = connections
                state.ready = true
            }
            restore(channels)
            logger.info("cluster engine started", metadata: ["node": "\(node)", "epoch": "\(epoch)", "channels": "\(channels.count)"])
        } catch {
            await close(connections)
            throw error
        }
    }

    private func connect() async throws -> Connections {
        let writer = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        let listener: PostgresConnection
        do {
            listener = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
        } catch {
            try? await writer.close()
            throw error
        }
        // LISTEN before anything is read, so that nothing committed from then on is missed:
        // what the reads return and what the stream brings overlap, and the broker drops the
        // overlap by offset.
        let (notifications, forward) = AsyncThrowingStream.makeStream(of: String.self)
        let (listening, started) = AsyncStream.makeStream(of: Void.self)
        let logger = self.logger
        let task = Task {
            do {
                try await listener.listen(on: Self.channelName) { sequence in
                    started.yield()
                    for try await notification in sequence { forward.yield(notification.payload) }
                }
                forward.finish(throwing: PostgresEngineError("the notification stream ended"))
            } catch {
                logger.debug("LISTEN ended", metadata: ["error": "\(error)"])
                forward.finish(throwing: error)
            }
            started.finish()
        }
        var iterator = listening.makeAsyncIterator()
        guard await iterator.next() != nil else {
            try? await writer.close()
            try? await listener.close()
            throw PostgresEngineError("LISTEN failed")
        }
        return Connections(writer: writer, listener: listener, notifications: notifications, listening: task)
    }

    private func close(_ connections: Connections) async {
        connections.listening.cancel()
        try? await connections.writer.close()
        try? await connections.listener.close()
    }

    private func createSchema(_ connection: PostgresConnection) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            // Nodes starting together must not race on CREATE TABLE.
            try await connection.query("SELECT pg_advisory_xact_lock(7210427)", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS herald_meta (key text PRIMARY KEY, value text NOT NULL)
                """, logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS herald_channels (
                    name text PRIMARY KEY,
                    last_offset bigint NOT NULL,
                    history_size integer NOT NULL DEFAULT 0,
                    retained_offset bigint)
                """, logger: logger)
            // Added after the first release of the schema: 0 keeps history for ever.
            try await connection.query("ALTER TABLE herald_channels ADD COLUMN IF NOT EXISTS history_ttl_ms bigint NOT NULL DEFAULT 0", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS herald_messages (
                    channel text NOT NULL,
                    "offset" bigint NOT NULL,
                    data text NOT NULL,
                    ext text,
                    published_ms bigint NOT NULL,
                    PRIMARY KEY (channel, "offset"))
                """, logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS herald_nodes (
                    id text PRIMARY KEY,
                    started_at timestamptz NOT NULL,
                    heartbeat_at timestamptz NOT NULL,
                    statistics text NOT NULL DEFAULT '{}')
                """, logger: logger)
        }
    }

    private func loadEpoch(_ connection: PostgresConnection) async throws -> String {
        let fresh = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let candidate = String(repeating: "0", count: 16 - fresh.count) + fresh
        try await connection.query("INSERT INTO herald_meta (key, value) VALUES ('epoch', \(candidate)) ON CONFLICT (key) DO NOTHING", logger: logger)
        for try await epoch in try await connection.query("SELECT value FROM herald_meta WHERE key = 'epoch'", logger: logger).decode(String.self) {
            return epoch
        }
        throw PostgresEngineError("herald_meta has no epoch")
    }

    /// Every channel with its history and retained value.
    private func snapshot(_ connection: PostgresConnection) async throws -> [StoredChannel] {
        let epoch = try await loadEpoch(connection)
        var channels: [String: StoredChannel] = [:]
        var retainedOffsets: [String: Int64] = [:]
        for try await (name, last, retained) in try await connection.query("SELECT name, last_offset, retained_offset FROM herald_channels", logger: logger).decode((String, Int64, Int64?).self) {
            channels[name] = StoredChannel(name: name, epoch: epoch, lastOffset: UInt64(last))
            if let retained { retainedOffsets[name] = retained }
        }
        let rows = try await connection.query("""
            SELECT m.channel, m."offset", m.data, m.ext, m.published_ms FROM herald_messages m
            JOIN herald_channels c ON c.name = m.channel
            WHERE (m."offset" > c.last_offset - c.history_size
                   AND (c.history_ttl_ms = 0 OR m.published_ms >= (extract(epoch FROM now()) * 1000)::bigint - c.history_ttl_ms))
               OR m."offset" = c.retained_offset
            ORDER BY m.channel, m."offset"
            """, logger: logger)
        for try await (channel, offset, data, ext, published) in rows.decode((String, Int64, String, String?, Int64).self) {
            let message = StoredMessage(offset: UInt64(offset), data: ByteBuffer(string: data), timestampMilliseconds: published, ext: Self.ext(ext))
            if retainedOffsets[channel] == offset { channels[channel]?.retained = message }
            channels[channel]?.history.append(message)
        }
        return channels.values.sorted { $0.name < $1.name }
    }

    static func ext(_ text: String?) -> JSONObject? {
        guard let text, !text.isEmpty else { return nil }
        return (try? JSONParser.parse(text))?.objectValue
    }

    // MARK: Publishing

    public func append(_ message: ClusterAppend, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        let accepted = state.withLock { state in
            guard state.ready else { return false }
            state.appends.append(Pending(append: message, completion: completion))
            state.wake?.yield()
            return true
        }
        if !accepted { completion(.failure(ClusterUnavailable("PostgreSQL is unreachable"))) }
    }

    public func broadcast(_ delivery: Delivery) {
        state.withLock { state in
            guard state.ready else { return }
            state.live.append(delivery)
            state.wake?.yield()
        }
    }

    /// Writes batches until the connection fails (then throws) or the task is cancelled.
    private func flush(_ connections: Connections) async throws {
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { state in
            state.wake = wake
            if !state.appends.isEmpty || !state.live.isEmpty { wake.yield() }
        }
        defer { state.withLock { $0.wake = nil } }
        for await _ in wakes {
            try await Task.sleep(for: Self.linger)
            while true {
                let (appends, live) = state.withLock { state in
                    defer { state.appends = []; state.live = [] }
                    return (state.appends, state.live)
                }
                if appends.isEmpty && live.isEmpty { break }
                do {
                    let offsets = try await writeBatch(appends, live: live, on: connections.writer)
                    for (pending, offset) in zip(appends, offsets) { pending.completion(.success(offset)) }
                } catch {
                    for pending in appends { pending.completion(.failure(error)) }
                    throw error
                }
            }
        }
    }

    /// One transaction: advance each channel's offset, insert the messages, notify.
    func writeBatch(_ appends: [Pending], live: [Delivery], on connection: PostgresConnection) async throws -> [UInt64] {
        // Per channel, in a fixed order (no deadlock between nodes): how many, and the options.
        var counts: [String: (count: Int64, historySize: Int32, historyTTL: Int64, retain: Bool)] = [:]
        for pending in appends {
            let name = pending.append.channel.rawValue
            var entry = counts[name] ?? (0, Int32(clamping: pending.append.historySize), pending.append.historyTTLMilliseconds ?? 0, false)
            entry.count += 1
            entry.retain = entry.retain || pending.append.retain
            counts[name] = entry
        }
        let names = counts.keys.sorted()
        let sequence = state.withLock { state -> Int in
            state.sequence += 1
            return state.sequence
        }
        return try await connection.withTransaction(logger: logger) { connection in
            var offsets: [UInt64] = []
            if !appends.isEmpty {
                let rows = try await connection.query("""
                    INSERT INTO herald_channels AS c (name, last_offset, history_size, history_ttl_ms, retained_offset)
                    SELECT n, k, h, ttl, CASE WHEN r THEN k END
                    FROM unnest(\(names)::text[], \(names.map { counts[$0]!.count })::bigint[], \(names.map { counts[$0]!.historySize })::integer[], \(names.map { counts[$0]!.historyTTL })::bigint[], \(names.map { counts[$0]!.retain })::boolean[]) AS t(n, k, h, ttl, r)
                    ORDER BY n
                    ON CONFLICT (name) DO UPDATE SET
                        last_offset = c.last_offset + EXCLUDED.last_offset,
                        history_size = EXCLUDED.history_size,
                        history_ttl_ms = EXCLUDED.history_ttl_ms,
                        retained_offset = CASE WHEN EXCLUDED.retained_offset IS NULL THEN c.retained_offset ELSE c.last_offset + EXCLUDED.last_offset END
                    RETURNING name, last_offset
                    """, logger: logger)
                var next: [String: UInt64] = [:]
                for try await (name, last) in rows.decode((String, Int64).self) {
                    next[name] = UInt64(last) - UInt64(counts[name]!.count) + 1
                }
                for pending in appends {
                    let name = pending.append.channel.rawValue
                    let offset = next[name]!
                    next[name] = offset + 1
                    offsets.append(offset)
                }
                try await connection.query("""
                    INSERT INTO herald_messages (channel, "offset", data, ext, published_ms)
                    SELECT * FROM unnest(\(appends.map { $0.append.channel.rawValue })::text[], \(offsets.map { Int64($0) })::bigint[], \(appends.map { String(buffer: $0.append.data) })::text[], \(appends.map { Self.text($0.append.ext) })::text[], \(appends.map { $0.append.timestampMilliseconds })::bigint[])
                    """, logger: logger)
            }
            for payload in payloads(appends: appends, offsets: offsets, live: live, sequence: sequence) {
                try await connection.query("SELECT pg_notify(\(Self.channelName), \(payload))", logger: logger)
            }
            return offsets
        }
    }

    static func text(_ ext: JSONObject?) -> String {
        guard let ext, !ext.isEmpty else { return "" }
        var buffer = ByteBuffer()
        buffer.writeJSON(ext)
        return String(buffer: buffer)
    }

    /// The batch as Bayeux-shaped JSON arrays of at most `payloadLimit` bytes each:
    /// `{"clientId":node,"channel":…,"data":…,"ext":…,"id":"o:OFFSET:MS"}` for a logged
    /// message (`"r:OFFSET:MS"` without `data` when it is too large: read it from the table),
    /// `"l:MS:SEQ"` for a live one (a live message too large is not sent to other nodes).
    func payloads(appends: [Pending], offsets: [UInt64], live: [Delivery], sequence: Int) -> [String] {
        var chunks: [String] = []
        var current = ""
        func add(_ entry: String) {
            if !current.isEmpty && current.utf8.count + entry.utf8.count + 2 > Self.payloadLimit {
                chunks.append("[" + current + "]")
                current = ""
            }
            current += current.isEmpty ? entry : "," + entry
        }
        func entry(channel: String, data: ByteBuffer?, ext: JSONObject?, id: String) -> String {
            var buffer = ByteBuffer()
            buffer.writeString(#"{"clientId":"#)
            buffer.writeJSONString(node)
            buffer.writeString(#","channel":"#)
            buffer.writeJSONString(channel)
            if var data {
                buffer.writeString(#","data":"#)
                buffer.writeBuffer(&data)
            }
            if let ext, !ext.isEmpty {
                buffer.writeString(#","ext":"#)
                buffer.writeJSON(ext)
            }
            buffer.writeString(#","id":"#)
            buffer.writeJSONString(id)
            buffer.writeString("}")
            return String(buffer: buffer)
        }
        for (pending, offset) in zip(appends, offsets) {
            let id = "o:\(offset):\(pending.append.timestampMilliseconds):\(sequence)"
            let full = entry(channel: pending.append.channel.rawValue, data: pending.append.data, ext: pending.append.ext, id: id)
            add(full.utf8.count + 2 <= Self.payloadLimit ? full : entry(channel: pending.append.channel.rawValue, data: nil, ext: nil, id: "r:\(offset):\(pending.append.timestampMilliseconds):\(sequence)"))
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (index, delivery) in live.enumerated() {
            let full = entry(channel: delivery.channel.rawValue, data: delivery.data, ext: delivery.ext, id: "l:\(now):\(sequence):\(index)")
            if full.utf8.count + 2 <= Self.payloadLimit {
                add(full)
            } else {
                logger.warning("a live message too large for NOTIFY is delivered on its node only", metadata: ["channel.name": "\(delivery.channel)", "bytes": "\(full.utf8.count)"])
            }
        }
        if !current.isEmpty { chunks.append("[" + current + "]") }
        return chunks
    }

    // MARK: Following the stream

    /// Hands each notification's messages to the broker, in order, until the stream fails.
    private func follow(_ connections: Connections) async throws {
        for try await payload in connections.notifications {
            let messages = try await decode(payload, reader: connections.listener)
            deliver(messages)
        }
    }

    private func deliver(_ messages: [ClusterMessage]) {
        guard !messages.isEmpty else { return }
        let deliver = state.withLock { state in
            for message in messages {
                if let offset = message.offset { state.delivered[message.channel.rawValue] = max(state.delivered[message.channel.rawValue] ?? 0, offset) }
            }
            return state.deliver
        }
        deliver?(messages)
    }

    func decode(_ payload: String, reader: PostgresConnection) async throws -> [ClusterMessage] {
        let batch: [BayeuxMessage]
        do {
            batch = try MessageCodec.decodeBatch(ByteBuffer(string: payload), maxMessages: 100_000)
        } catch {
            logger.error("unreadable cluster notification", metadata: ["error": "\(error)"])
            return []
        }
        var out: [ClusterMessage] = []
        for message in batch {
            guard let raw = message.channel, let channel = ChannelName(raw), let id = message.id?.stringValue else { continue }
            let parts = id.split(separator: ":")
            guard parts.count >= 3, let timestamp = Int64(parts[parts[0] == "l" ? 1 : 2]) else { continue }
            let node = message.clientId ?? ""
            switch parts[0] {
            case "o":
                guard let offset = UInt64(parts[1]), let data = message.data else { continue }
                out.append(ClusterMessage(channel: channel, offset: offset, data: data, ext: message.ext, timestampMilliseconds: timestamp, node: node))
            case "r":
                guard let offset = Int64(parts[1]) else { continue }
                for try await (data, ext) in try await reader.query(#"SELECT data, ext FROM herald_messages WHERE channel = \#(raw) AND "offset" = \#(offset)"#, logger: logger).decode((String, String?).self) {
                    out.append(ClusterMessage(channel: channel, offset: UInt64(offset), data: ByteBuffer(string: data), ext: Self.ext(ext), timestampMilliseconds: timestamp, node: node))
                }
            case "l":
                guard let data = message.data else { continue }
                out.append(ClusterMessage(channel: channel, offset: nil, data: data, ext: message.ext, timestampMilliseconds: timestamp, node: node))
            default:
                continue
            }
        }
        return out
    }

    /// After a reconnect: every message committed since the last one handed over, per channel
    /// (older ones trimmed meanwhile are gone: the broker's log then jumps, and its clients'
    /// resume positions before the jump are refused as expired, which they report as gaps).
    private func catchUp(_ reader: PostgresConnection) async throws {
        let known = state.withLock { $0.delivered }
        var behind: [(String, Int64)] = []
        for try await (name, last) in try await reader.query("SELECT name, last_offset FROM herald_channels", logger: logger).decode((String, Int64).self) {
            if UInt64(last) > known[name] ?? 0 { behind.append((name, Int64(known[name] ?? 0))) }
        }
        for (name, after) in behind {
            guard let channel = ChannelName(name) else { continue }
            var messages: [ClusterMessage] = []
            let rows = try await reader.query(#"SELECT "offset", data, ext, published_ms FROM herald_messages WHERE channel = \#(name) AND "offset" > \#(after) ORDER BY "offset""#, logger: logger)
            for try await (offset, data, ext, published) in rows.decode((Int64, String, String?, Int64).self) {
                messages.append(ClusterMessage(channel: channel, offset: UInt64(offset), data: ByteBuffer(string: data), ext: Self.ext(ext), timestampMilliseconds: published, node: ""))
            }
            deliver(messages)
        }
        if !behind.isEmpty { logger.info("cluster catch-up after reconnect", metadata: ["channels": "\(behind.count)"]) }
    }

    // MARK: Membership and trimming

    /// The nodes whose heartbeat is less than 10 s old.
    public func nodes() async throws -> [ClusterNode] {
        guard let reader = state.withLock({ $0.connections?.listener }) else { throw ClusterUnavailable("PostgreSQL is unreachable") }
        var nodes: [ClusterNode] = []
        let rows = try await reader.query("""
            SELECT id, (extract(epoch FROM started_at) * 1000)::bigint, (extract(epoch FROM heartbeat_at) * 1000)::bigint, statistics
            FROM herald_nodes WHERE heartbeat_at > now() - interval '10 seconds' ORDER BY id
            """, logger: logger)
        for try await (id, started, heartbeat, statistics) in rows.decode((String, Int64, Int64, String).self) {
            nodes.append(ClusterNode(id: id, startedAtMilliseconds: started, heartbeatAtMilliseconds: heartbeat, statistics: Self.ext(statistics) ?? JSONObject()))
        }
        return nodes
    }

    private func housekeeping(_ connections: Connections) async throws {
        var beats = 0
        while true {
            let statistics = Self.text(state.withLock { $0.statistics }?() ?? JSONObject())
            let started = startedAt
            try await connections.listener.query("""
                INSERT INTO herald_nodes (id, started_at, heartbeat_at, statistics) VALUES (\(node), \(started), now(), \(statistics))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), statistics = EXCLUDED.statistics
                """, logger: logger)
            if beats % 5 == 0 {
                // History past each channel's size or age, except its retained value.
                try await connections.listener.query("""
                    DELETE FROM herald_messages m USING herald_channels c
                    WHERE m.channel = c.name
                      AND (m."offset" <= c.last_offset - c.history_size
                           OR (c.history_ttl_ms > 0 AND m.published_ms < (extract(epoch FROM now()) * 1000)::bigint - c.history_ttl_ms))
                      AND m."offset" IS DISTINCT FROM c.retained_offset
                    """, logger: logger)
            }
            beats += 1
            try await Task.sleep(for: .seconds(2))
        }
    }

    // MARK: Running

    /// Follows the stream, writes batches and heartbeats; reconnects after a failure, with
    /// backoff up to 5 s, until cancelled or a graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var delay: Duration = .milliseconds(100)
            while !Task.isCancelled {
                var connections = self.state.withLock { $0.connections }
                if connections == nil {
                    do {
                        let fresh = try await self.connect()
                        try await self.catchUp(fresh.listener)
                        self.state.withLock { state in
                            state.connections = fresh
                            state.ready = true
                        }
                        self.logger.notice("reconnected to PostgreSQL", metadata: ["node": "\(self.node)"])
                        connections = fresh
                    } catch {
                        self.logger.debug("PostgreSQL still unreachable", metadata: ["error": "\(String(reflecting: error))"])
                        try? await Task.sleep(for: delay)
                        delay = min(delay * 2, .seconds(5))
                        continue
                    }
                }
                guard let connections else { continue }
                let began = ContinuousClock.now
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await self.follow(connections) }
                        group.addTask { try await self.flush(connections) }
                        group.addTask { try await self.housekeeping(connections) }
                        defer { group.cancelAll() }
                        try await group.next()
                        // A loop that ends without an error ended because it was cancelled.
                        if !Task.isCancelled { throw PostgresEngineError("a cluster loop ended") }
                    }
                } catch {
                    if !Task.isCancelled {
                        self.logger.warning("lost PostgreSQL; refusing publishes to logged channels until it is back", metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
                let failed = self.state.withLock { state in
                    state.ready = false
                    state.connections = nil
                    defer { state.appends = []; state.live = [] }
                    return state.appends
                }
                for pending in failed { pending.completion(.failure(ClusterUnavailable("PostgreSQL is unreachable"))) }
                await self.close(connections)
                // A connection that failed at once is not retried at once.
                delay = ContinuousClock.now - began > .seconds(10) ? .milliseconds(100) : min(delay * 2, .seconds(5))
                try? await Task.sleep(for: delay)
            }
        }
        let connections = state.withLock { state in
            state.ready = false
            defer { state.connections = nil }
            return state.connections
        }
        if let connections {
            try? await connections.listener.query("DELETE FROM herald_nodes WHERE id = \(node)", logger: logger)
            await close(connections)
        }
    }
}

/// A configuration or protocol error of the PostgreSQL engine.
public struct PostgresEngineError: Error, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
