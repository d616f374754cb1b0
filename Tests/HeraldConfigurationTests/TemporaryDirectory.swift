import Foundation

/// A directory of its own for each test's configuration files, removed when the test is done.
struct TemporaryDirectory {
    let path: String

    static func with<R>(_ body: (TemporaryDirectory) throws -> R) throws -> R {
        let directory = TemporaryDirectory(path: NSTemporaryDirectory() + "herald-configuration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        return try body(directory)
    }

    /// Writes `text` to `name` in the directory and returns the file's path.
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}
