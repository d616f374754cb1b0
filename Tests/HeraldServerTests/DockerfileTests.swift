import Foundation
import Testing

/// docker/Dockerfile copies only what the manifest needs, so that an edit to docs keeps the
/// build layer cached. Every folder the manifest's targets live in must then be among the
/// copies, or `swift build` in the image fails (as it did once `Examples/` had a target).
/// docker/test proves the image for real, but only when run by hand; this catches the
/// omission on every test run.
@Suite struct DockerfileTests {
    @Test func theBuildStageCopiesEveryFolderTheManifestUses() throws {
        let root = ReadmeEmbeddingTests.root
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let dockerfile = try String(contentsOf: root.appendingPathComponent("docker/Dockerfile"), encoding: .utf8)
        // The package as everyone builds it: the opt-in targets (benchmarks, fuzzing) are
        // added after it under `if Context.environment[…]`, and the image does not build them.
        let always = manifest.components(separatedBy: "\nif Context.environment[").first ?? manifest
        var folders: Set<String> = ["Sources", "Tests"]
        var rest = always[...]
        while let range = rest.range(of: #"path: ""#) {
            let value = rest[range.upperBound...].prefix { $0 != "\"" }
            if let first = value.split(separator: "/").first { folders.insert(String(first)) }
            rest = rest[range.upperBound...]
        }
        #expect(folders.contains("Examples"), "the manifest's example target moved? \(folders)")
        let copied = Set(dockerfile.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            guard words.count == 3, words[0] == "COPY", words[2] == "./\(words[1])" else { return nil }
            return String(words[1])
        })
        #expect(folders.subtracting(copied).isEmpty, "docker/Dockerfile does not copy \(folders.subtracting(copied).sorted())")
    }
}
