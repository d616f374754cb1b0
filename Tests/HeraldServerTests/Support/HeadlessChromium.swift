import Foundation
import HeraldProtocol
import NIOCore

/// Debian's `chromium`, headless, driven over the DevTools protocol (JSON over a WebSocket,
/// through `TestWebSocket`). It starts on a port of its own choosing on loopback, with a
/// throw-away profile, and is killed by `close()`.
final class HeadlessChromium: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let process: Process
    let profile: URL
    let page: DevToolsPage

    private init(process: Process, profile: URL, page: DevToolsPage) {
        self.process = process
        self.profile = profile
        self.page = page
    }

    static var executable: URL? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .map { URL(fileURLWithPath: $0) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    static func launch(width: Int = 1200, height: Int = 1000) async throws -> HeadlessChromium {
        guard let executable else { throw Failure(description: "chromium not found (apt-get install chromium)") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("herald-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = executable
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-sync", "--disable-component-update",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            "--user-data-dir=\(profile.path)", "--window-size=\(width),\(height)", "about:blank",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        do {
            // Chromium writes the port it chose to DevToolsActivePort in the profile.
            let portFile = profile.appendingPathComponent("DevToolsActivePort")
            let deadline = ContinuousClock.now + .seconds(30)
            var port: Int?
            while port == nil {
                if let text = try? String(contentsOf: portFile, encoding: .utf8), let line = text.split(separator: "\n").first { port = Int(line) }
                guard port == nil else { break }
                guard process.isRunning, ContinuousClock.now < deadline else { throw Failure(description: "chromium did not open its DevTools port") }
                try await Task.sleep(for: .milliseconds(50))
            }
            let list = try await TestHTTP.request("GET", port: port!, path: "/json/list", on: LiveServer.group)
            let targets = try JSONSerialization.jsonObject(with: Data(list.text.utf8)) as? [[String: Any]] ?? []
            guard let target = targets.first(where: { $0["type"] as? String == "page" }),
                let address = (target["webSocketDebuggerUrl"] as? String).flatMap(URL.init(string:))
            else { throw Failure(description: "no page target in \(list.text)") }
            let socket = try await TestWebSocket.connect(port: port!, path: address.path, on: LiveServer.group)
            return HeadlessChromium(process: process, profile: profile, page: DevToolsPage(socket: socket))
        } catch {
            process.terminate()
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: profile)
            throw error
        }
    }

    func close() async {
        await page.socket.close()
        process.terminate()
        _ = try? await ChildProcess.offThePool { [process] in process.waitUntilExit() }
        try? FileManager.default.removeItem(at: profile)
    }

    static func with<T>(_ body: (DevToolsPage) async throws -> T) async throws -> T {
        let browser = try await launch()
        do {
            let result = try await body(browser.page)
            await browser.close()
            return result
        } catch {
            await browser.close()
            throw error
        }
    }
}

/// One page target: commands (`call`) answered in order, events skipped.
actor DevToolsPage {
    let socket: TestWebSocket
    private var nextId = 0

    init(socket: TestWebSocket) { self.socket = socket }

    /// Sends a DevTools command and returns its `result`; throws its `error`.
    @discardableResult
    func call(_ method: String, _ parameters: [String: Any] = [:], timeout: Duration = .seconds(20)) async throws -> [String: Any] {
        nextId += 1
        let id = nextId
        let message = try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": parameters])
        try await socket.send(String(decoding: message, as: UTF8.self))
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw HeadlessChromium.Failure(description: "\(method): no answer within \(timeout)") }
            let text = try await socket.receive(timeout: remaining)
            guard let reply = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], reply["id"] as? Int == id else { continue }
            if let error = reply["error"] { throw HeadlessChromium.Failure(description: "\(method): \(error)") }
            return reply["result"] as? [String: Any] ?? [:]
        }
    }

    /// The value of a JavaScript expression (awaited if it is a promise), as JSON (`.null`
    /// for `undefined`).
    @discardableResult
    func evaluate(_ expression: String) async throws -> JSONValue {
        let result = try await call("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] { throw HeadlessChromium.Failure(description: "\(expression): \(exception)") }
        let value = (result["result"] as? [String: Any])?["value"] ?? NSNull()
        let text = try JSONSerialization.data(withJSONObject: [value], options: [.fragmentsAllowed])
        return try JSONParser.parse(String(decoding: text, as: UTF8.self)).arrayValue?.first ?? .null
    }

    /// Evaluates `expression` every 100 ms until it is `true`; until then a thrown exception
    /// (the page still loading) counts as false.
    func waitUntil(_ expression: String, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = "false"
        while true {
            do {
                if try await evaluate(expression) == .bool(true) { return }
            } catch {
                last = "\(error)"
            }
            guard ContinuousClock.now < deadline else { throw HeadlessChromium.Failure(description: "still not true after \(timeout) (\(last)): \(expression)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func navigate(_ url: String) async throws {
        try await call("Page.navigate", ["url": url])
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        let result = try await call("Page.captureScreenshot", ["format": "png"])
        guard let base64 = result["data"] as? String, let data = Data(base64Encoded: base64) else { throw HeadlessChromium.Failure(description: "no screenshot data") }
        return data
    }
}
