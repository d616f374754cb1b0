import Foundation
import HeraldCore
import HeraldProtocol
import HeraldSQLite
import NIOCore
import Testing

/// One suite, run against every `MessageStore`: the SQLite store and its in-memory twin.
@Suite struct MessageStoreConformanceTests {
    enum Kind: String, CaseIterable, CustomStringConvertible, Sendable {
        case memory, sqlite
        var description: String { rawValue }
    }

    /// Opens "the same" store again, as a restarted process would.
    final class Fixture: Sendable {
        let kind: Kind
        let path: String
        let memory = InMemoryMessageStore()

        init(_ kind: Kind) {
            self.kind = kind
            self.path = NSTemporaryDirectory() + "herald-store-\(UUID().uuidString).sqlite"
        }

        func store() -> any MessageStore {
            switch kind {
            case .memory: return memory
            case .sqlite: return SQLiteMessageStore(path: path)
            }
        }

        deinit {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
    }

    func message(_ offset: UInt64, _ text: String, at time: Int64 = 1_000) -> StoredMessage {
        StoredMessage(offset: offset, data: ByteBuffer(string: text), timestampMilliseconds: time)
    }

    /// An append that keeps the `limit` newest offsets (consecutive offsets, as within a life
    /// of the broker), or history from `from`.
    func append(_ channel: String, _ m: StoredMessage, epoch: String = "e1", limit: Int = 10, from: UInt64? = nil, retain: Bool = true) -> StoreWrite {
        let historyFrom = from ?? (limit > 0 ? UInt64(max(1, Int(m.offset) - limit + 1)) : nil)
        return .append(channel: channel, epoch: epoch, message: m, historyFrom: historyFrom, retain: retain)
    }

    @Test(arguments: Kind.allCases)
    func emptyStoreOpensClean(kind: Kind) async throws {
        let fixture = Fixture(kind)
        let recovery = try await fixture.store().open()
        #expect(recovery.channels.isEmpty)
        #expect(recovery.cleanShutdown)
    }

    @Test(arguments: Kind.allCases)
    func writesSurviveAReopen(kind: Kind) async throws {
        let fixture = Fixture(kind)
        let store = fixture.store()
        _ = try await store.open()
        try await store.write([append("/a", message(1, #"{"p":1}"#)), append("/a", message(2, #"{"p":2}"#)), append("/b", message(1, "\"x\""), epoch: "e9", limit: 0)])
        try await store.close()
        let recovery = try await fixture.store().open()
        #expect(recovery.cleanShutdown)
        #expect(recovery.channels.map(\.name) == ["/a", "/b"])
        let a = recovery.channels[0]
        #expect(a.epoch == "e1")
        #expect(a.lastOffset == 2)
        #expect(a.history.map(\.offset) == [1, 2])
        #expect(a.history.map { String(buffer: $0.data) } == [#"{"p":1}"#, #"{"p":2}"#])
        #expect(a.history[0].timestampMilliseconds == 1_000)
        #expect(a.retained?.offset == 2)
        let b = recovery.channels[1]
        #expect(b.history.isEmpty)
        #expect(b.retained.map { String(buffer: $0.data) } == "\"x\"")
        #expect(b.epoch == "e9")
    }

    @Test(arguments: Kind.allCases)
    func historyIsTrimmedToItsLimit(kind: Kind) async throws {
        let fixture = Fixture(kind)
        let store = fixture.store()
        _ = try await store.open()
        for batch in 0..<5 {
            try await store.write((1...10).map { i in append("/h", message(UInt64(batch * 10 + i), "\(batch * 10 + i)"), limit: 7) })
        }
        try await store.close()
        let channel = try #require(try await fixture.store().open().channels.first)
        #expect(channel.history.map(\.offset) == Array(44...50))
        #expect(channel.lastOffset == 50)
    }

    /// After a crash, offsets jump (`Broker.offsetGapAfterCrash`): history is trimmed to where
    /// the broker says it starts, not to the newest N offsets, which would drop every message
    /// from before the gap.
    @Test(arguments: Kind.allCases)
    func historyIsKeptAcrossAnOffsetGap(kind: Kind) async throws {
        let fixture = Fixture(kind)
        var store = fixture.store()
        _ = try await store.open()
        try await store.write((1...5).map { append("/g", message($0, "\($0)"), from: 1) })
        var recovery: StoreRecovery
        (store, recovery) = try await reopen(fixture, store)
        try await store.write([append("/g", message(1_000_006, "6"), from: 1)])
        (store, recovery) = try await reopen(fixture, store)
        #expect(recovery.channels.first?.history.map(\.offset) == [1, 2, 3, 4, 5, 1_000_006])
        // The broker's history of 6 moves on by two.
        try await store.write([append("/g", message(1_000_007, "7"), from: 2), append("/g", message(1_000_008, "8"), from: 3)])
        (store, recovery) = try await reopen(fixture, store)
        #expect(recovery.channels.first?.history.map(\.offset) == [3, 4, 5, 1_000_006, 1_000_007, 1_000_008])
        #expect(recovery.channels.first?.lastOffset == 1_000_008)
        try await store.close()
    }

    /// The `ext` extensions gave a message comes back with its history entry and retained
    /// value; messages without one come back without.
    @Test(arguments: Kind.allCases)
    func extensionExtSurvivesAReopen(kind: Kind) async throws {
        let fixture = Fixture(kind)
        var store = fixture.store()
        _ = try await store.open()
        var stamped = message(2, "2")
        stamped.ext = JSONObject([("stamp", .number("7")), ("by", .string("gate \"1\""))])
        try await store.write([append("/x", message(1, "1")), append("/x", stamped)])
        var recovery: StoreRecovery
        (store, recovery) = try await reopen(fixture, store)
        let channel = try #require(recovery.channels.first)
        #expect(channel.history.map(\.ext) == [nil, stamped.ext])
        #expect(channel.retained?.ext == stamped.ext)
        try await store.close()
    }

    @Test(arguments: Kind.allCases)
    func ttlTrimsAndRetainedDrops(kind: Kind) async throws {
        let fixture = Fixture(kind)
        var store = fixture.store()
        _ = try await store.open()
        try await store.write([append("/t", message(1, "1", at: 100)), append("/t", message(2, "2", at: 200)), append("/t", message(3, "3", at: 300))])
        try await store.write([.trimHistory(channel: "/t", before: 250), .dropRetained(channel: "/t", offset: 2)])
        var recovery: StoreRecovery
        (store, recovery) = try await reopen(fixture, store)
        var channel = try #require(recovery.channels.first)
        #expect(channel.history.map(\.offset) == [3])
        // Dropping a retained value that has since been replaced does nothing.
        #expect(channel.retained?.offset == 3)
        try await store.write([.dropRetained(channel: "/t", offset: 3)])
        (store, recovery) = try await reopen(fixture, store)
        channel = try #require(recovery.channels.first)
        #expect(channel.retained == nil)
        #expect(channel.lastOffset == 3)
    }

    @Test(arguments: Kind.allCases)
    func aNewEpochForgetsTheOldLife(kind: Kind) async throws {
        let fixture = Fixture(kind)
        let store = fixture.store()
        _ = try await store.open()
        try await store.write([append("/e", message(1, "1")), append("/e", message(2, "2"))])
        try await store.write([append("/e", message(1, "new"), epoch: "e2")])
        let channel = try #require(try await reopen(fixture, store).1.channels.first)
        #expect(channel.epoch == "e2")
        #expect(channel.lastOffset == 1)
        #expect(channel.history.map { String(buffer: $0.data) } == ["new"])
    }

    @Test(arguments: Kind.allCases)
    func anUncleanShutdownIsReported(kind: Kind) async throws {
        let fixture = Fixture(kind)
        let store = fixture.store()
        _ = try await store.open()
        try await store.write([append("/c", message(1, "1"))])
        // No close(): the process died.
        if let memory = store as? InMemoryMessageStore { memory.crash() }
        let recovery = try await fixture.store().open()
        #expect(!recovery.cleanShutdown)
        #expect(recovery.channels.first?.lastOffset == 1)
    }

    /// Closes `store` and opens the same data again.
    func reopen(_ fixture: Fixture, _ store: any MessageStore) async throws -> (any MessageStore, StoreRecovery) {
        try await store.close()
        let again = fixture.store()
        return (again, try await again.open())
    }
}
