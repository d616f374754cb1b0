import Foundation

/// Runs a command to completion and returns its exit status and combined stdout/stderr.
enum ChildProcess {
    /// - Parameter environment: added to this process's environment for the child.
    static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        return try await offThePool {
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: output, as: UTF8.self))
        }
    }

    /// The first line a child writes to `pipe` (its start-up line), without the newline.
    static func firstLine(of pipe: Pipe) async throws -> String {
        try await offThePool { () -> String in
            var bytes: [UInt8] = []
            while let byte = try pipe.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { bytes.append(byte) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Runs blocking work (pipe reads, waits for a child's exit) on a thread of its own.
    /// `Task.detached` is not enough: it runs on Swift's cooperative pool, which has one thread
    /// per core, and a few children read that way stall every other test for seconds.
    static func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}
