import HeraldConfiguration
import Testing

/// Settings that parse but cannot work together are refused before anything starts.
@Suite struct ValidationTests {
    @Test(arguments: [
        (message: 2048, batch: 1024),
        (message: 0, batch: 1024),
        (message: -1, batch: 1024),
    ])
    func batchMustHoldTheLargestMessage(message: Int, batch: Int) {
        let error = #expect(throws: HeraldConfigurationError.self) {
            try HeraldConfiguration(overrides: .init(maxMessageBytes: message, maxBatchBytes: batch), environment: [:])
        }
        #expect(error == .invalidByteLimits)
        #expect(error?.description == "max-batch-bytes must be at least max-message-bytes, and both positive")
    }

    @Test func batchEqualToMessageIsAccepted() throws {
        let configuration = try HeraldConfiguration(environment: ["HERALD_MAX_MESSAGE_BYTES": "4096", "HERALD_MAX_BATCH_BYTES": "4096"])
        #expect(configuration.broker.maxBatchBytes == 4096)
    }

    @Test(arguments: ["bayeux", "", "x/"])
    func pathMustStartWithASlash(path: String) {
        let error = #expect(throws: HeraldConfigurationError.self) {
            try HeraldConfiguration(overrides: .init(path: path), environment: [:])
        }
        #expect(error == .invalidPath)
        #expect(error?.description == "path must start with /")
    }

    @Test func rootPathIsAccepted() throws {
        #expect(try HeraldConfiguration(environment: ["HERALD_PATH": "/"]).server.path == "/")
    }
}
