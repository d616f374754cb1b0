import Foundation
import GRDB
public import HeraldCore
import HeraldProtocol
import NIOCore
import Synchronization

/// The embedded default `MessageStore`: SQLite through GRDB, in WAL mode.
///
/// A committed write survives a crash of the process (kill -9) in either mode. With
/// `synchronousFull` (what `herald serve` picks when a channel is `durable`) it also survives
/// a crash of the machine, at the price of an fsync per commit; without it SQLite syncs at
/// checkpoints only (`synchronous = NORMAL`).
///
/// The broker calls `write` from one task with everything gathered since the last commit
/// (group commit), so the cost of a commit is shared by many messages.
public final class SQLiteMessageStore: MessageStore {
    public let path: String
    public let synchronousFull: Bool
    let pool = Mutex<DatabasePool?>(nil)
    /// Epoch per channel as last written, so appends need no lookup.
    let epochs = Mutex<[String: String]>([:])

    public init(path: String, synchronousFull: Bool = true) {
        self.path = path
        self.synchronousFull = synchronousFull
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // Shipped migrations are never edited; add new ones below.
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE channel (
                    name TEXT PRIMARY KEY NOT NULL,
                    epoch TEXT NOT NULL,
                    last_offset INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE message (
                    channel TEXT NOT NULL,
                    offset INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    created_ms INTEGER NOT NULL,
                    PRIMARY KEY (channel, offset)
                ) WITHOUT ROWID;
                CREATE TABLE retained (
                    channel TEXT PRIMARY KEY NOT NULL,
                    offset INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    created_ms INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v2") { db in
            // The `ext` extensions gave a message (JSON text), for its retained and replayed
            // copies; NULL for none.
            try db.execute(sql: """
                ALTER TABLE message ADD COLUMN ext TEXT;
                ALTER TABLE retained ADD COLUMN ext TEXT;
                """)
        }
        return migrator
    }

    func database() throws -> DatabasePool {
        guard let pool = pool.withLock({ $0 }) else { throw StoreClosed(path: path) }
        return pool
    }

    struct StoreClosed: Error, CustomStringConvertible {
        var path: String
        var description: String { "message store \(path) is not open" }
    }

    public func open() async throws -> StoreRecovery {
        var configuration = Configuration()
        let full = synchronousFull
        configuration.prepareDatabase { db in
            try db.execute(sql: full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
        let recovery = try await pool.writeWithoutTransaction { db -> StoreRecovery in
            // The "running" mark is committed with an fsync even under NORMAL: lost to a power
            // failure, it would make the next start take an unclean end for a clean one and
            // hand out offsets again that subscribers already saw (see `StoreRecovery`).
            if !full { try db.execute(sql: "PRAGMA synchronous = FULL") }
            defer { if !full { try? db.execute(sql: "PRAGMA synchronous = NORMAL") } }
            var recovery: StoreRecovery?
            try db.inTransaction {
                recovery = try Self.recover(db)
                return .commit
            }
            return recovery!
        }
        epochs.withLock { map in
            for channel in recovery.channels { map[channel.name] = channel.epoch }
        }
        self.pool.withLock { $0 = pool }
        return recovery
    }

    /// Reads everything back and marks the store as running (`clean_shutdown = 0`, until
    /// `close()`), in one transaction.
    static func recover(_ db: Database) throws -> StoreRecovery {
        let clean = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'clean_shutdown'") ?? "1"
        try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('clean_shutdown', '0') ON CONFLICT(key) DO UPDATE SET value = '0'")
        var channels: [StoredChannel] = []
        for row in try Row.fetchAll(db, sql: "SELECT name, epoch, last_offset FROM channel ORDER BY name") {
            let name: String = row["name"]
            let history = try Row.fetchAll(db, sql: "SELECT offset, data, created_ms, ext FROM message WHERE channel = ? ORDER BY offset", arguments: [name]).map(Self.message)
            let retained = try Row.fetchOne(db, sql: "SELECT offset, data, created_ms, ext FROM retained WHERE channel = ?", arguments: [name]).map(Self.message)
            channels.append(StoredChannel(name: name, epoch: row["epoch"], lastOffset: UInt64(row["last_offset"] as Int64), history: history, retained: retained))
        }
        return StoreRecovery(channels: channels, cleanShutdown: clean == "1")
    }

    static func message(_ row: Row) -> StoredMessage {
        let data: Data = row["data"]
        let ext = (row["ext"] as String?).flatMap { try? JSONParser.parse($0).objectValue }
        return StoredMessage(offset: UInt64(row["offset"] as Int64), data: ByteBuffer(bytes: data), timestampMilliseconds: row["created_ms"], ext: ext)
    }

    public func write(_ writes: [StoreWrite]) async throws {
        guard !writes.isEmpty else { return }
        let pool = try database()
        let known = epochs.withLock { $0 }
        let changed = try await Self.write(pool) { db -> [String: String] in
            var epochs = known
            // Per channel: the newest offset written, and where its history now starts (from the
            // newest append that has one), applied once per commit rather than once per message.
            var newest: [String: (offset: Int64, historyFrom: Int64?)] = [:]
            for write in writes {
                switch write {
                case .append(let channel, let epoch, let message, let historyFrom, let retain):
                    if epochs[channel] != epoch {
                        // A new life of the channel: its old history is gone.
                        try db.execute(sql: "DELETE FROM message WHERE channel = ?", arguments: [channel])
                        try db.execute(sql: "DELETE FROM retained WHERE channel = ?", arguments: [channel])
                        try db.execute(sql: "INSERT INTO channel (name, epoch, last_offset) VALUES (?, ?, 0) ON CONFLICT(name) DO UPDATE SET epoch = excluded.epoch, last_offset = 0", arguments: [channel, epoch])
                        epochs[channel] = epoch
                    }
                    let offset = Int64(message.offset)
                    let data = Data(message.data.readableBytesView)
                    let ext = message.ext.map { ext -> String in
                        var buffer = ByteBuffer()
                        buffer.writeJSON(ext)
                        return String(buffer: buffer)
                    }
                    if offset >= newest[channel]?.offset ?? 0 {
                        newest[channel] = (offset, historyFrom.map { Int64($0) } ?? newest[channel]?.historyFrom)
                    }
                    if historyFrom != nil {
                        try db.cachedStatement(sql: "INSERT OR REPLACE INTO message (channel, offset, data, created_ms, ext) VALUES (?, ?, ?, ?, ?)")
                            .execute(arguments: [channel, offset, data, message.timestampMilliseconds, ext])
                    }
                    if retain {
                        try db.cachedStatement(sql: "INSERT OR REPLACE INTO retained (channel, offset, data, created_ms, ext) VALUES (?, ?, ?, ?, ?)")
                            .execute(arguments: [channel, offset, data, message.timestampMilliseconds, ext])
                    }
                case .trimHistory(let channel, let before):
                    try db.execute(sql: "DELETE FROM message WHERE channel = ? AND created_ms < ?", arguments: [channel, before])
                case .dropRetained(let channel, let offset):
                    try db.execute(sql: "DELETE FROM retained WHERE channel = ? AND offset = ?", arguments: [channel, Int64(offset)])
                }
            }
            for (channel, newest) in newest {
                try db.cachedStatement(sql: "UPDATE channel SET last_offset = max(last_offset, ?) WHERE name = ?").execute(arguments: [newest.offset, channel])
                if let historyFrom = newest.historyFrom {
                    try db.cachedStatement(sql: "DELETE FROM message WHERE channel = ? AND offset < ?")
                        .execute(arguments: [channel, historyFrom])
                }
            }
            return epochs
        }
        epochs.withLock { $0 = changed }
    }

    /// `pool.write`, run to its end even when the calling task is cancelled (GRDB's async
    /// accesses give up on cancellation): the broker's last commit and the clean-shutdown mark
    /// may come from a cancelled task, and must not be lost to it (`MessageStore`).
    private static func write<T: Sendable>(_ pool: DatabasePool, _ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            pool.asyncWrite(updates) { _, result in continuation.resume(with: result) }
        }
    }

    public func close() async throws {
        guard let pool = self.pool.withLock({ $0 }) else { return }
        try await Self.write(pool) { db in
            try db.execute(sql: "UPDATE meta SET value = '1' WHERE key = 'clean_shutdown'")
        }
        try pool.close()
        self.pool.withLock { $0 = nil }
    }
}
