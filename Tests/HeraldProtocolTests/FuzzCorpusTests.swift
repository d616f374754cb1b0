import Foundation
@testable import HeraldProtocol
import NIOCore
import Testing

/// Every input kept in `FuzzCorpus/` (the fuzzer's seeds, and any input it ever crashed on)
/// through the fuzz target's checks: a regression traps here as it did under the fuzzer.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzCorpus")

    @Test func keptInputsPassTheFuzzChecks() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).sorted()
        #expect(files.count >= 6)
        for file in files {
            let bytes = try Data(contentsOf: Self.corpus.appendingPathComponent(file))
            bytes.withUnsafeBytes { FuzzTarget.run($0) }
        }
    }

    /// The checks are not vacuous: they see the parts of a valid input.
    @Test func theChecksReachTheirTargets() throws {
        let publish = try Data(contentsOf: Self.corpus.appendingPathComponent("publish.json"))
        let messages = try MessageCodec.decodeBatch(ByteBuffer(bytes: publish))
        #expect(messages.first?.channel == "/stocks/AAPL")
        #expect(ChannelPattern("/stocks/**")?.matches(ChannelName("/stocks/x")!) == true)
    }
}
