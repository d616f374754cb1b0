import Foundation
import HeraldCore
import HeraldProtocol
import Testing

/// Replays the JSON transcripts in `Protocol/vectors/*.json` against a live server, once per
/// transport each vector names. The format is described in `Protocol/vectors/README.md`.
@Suite struct VectorTests {
    @Test(arguments: VectorCase.all)
    func vector(_ vectorCase: VectorCase) async throws {
        let vector: Vector
        switch vectorCase.loaded {
        case .failure(let error):
            Issue.record("\(vectorCase.file): \(error.description)")
            return
        case .success(let loaded):
            vector = loaded
        }
        do {
            var scratch = BrokerConfiguration()
            try vector.apply(to: &scratch)
        } catch {
            Issue.record(Comment(rawValue: "vector \"\(vector.name)\": \(error.description)"))
            return
        }
        let live = try await LiveServer.start(broker: { try? vector.apply(to: &$0) })
        let runner = VectorRunner(vector: vector, transport: vectorCase.transport, port: live.port)
        do {
            try await runner.run()
        } catch let failure as VectorFailure {
            Issue.record(Comment(rawValue: "vector \"\(vector.name)\" over \(vectorCase.transport.rawValue): \(failure.description)"))
        } catch {
            Issue.record(Comment(rawValue: "vector \"\(vector.name)\" over \(vectorCase.transport.rawValue): \(error)"))
        }
        await runner.closeAll()
        await live.stop()
    }
}

// MARK: - Cases

/// One (vector file, transport) pair.
struct VectorCase: Sendable, CustomTestStringConvertible {
    let file: String
    let transport: VectorTransport
    let loaded: Result<Vector, VectorFailure>

    var testDescription: String { "\(file) [\(transport.rawValue)]" }

    /// `<package>/Protocol/vectors` (three levels up from this file is the package root), or
    /// the directory in the environment variable `HERALD_VECTORS`.
    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["HERALD_VECTORS"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Protocol/vectors", isDirectory: true)
    }()

    static let all: [VectorCase] = {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasSuffix(".json") }
                .sorted()
        } catch {
            return [VectorCase(file: "Protocol/vectors", transport: .websocket, loaded: .failure(VectorFailure("cannot list \(directory.path): \(error)")))]
        }
        if names.isEmpty {
            return [VectorCase(file: "Protocol/vectors", transport: .websocket, loaded: .failure(VectorFailure("no vectors in \(directory.path)")))]
        }
        var cases: [VectorCase] = []
        for name in names {
            let loaded = Result { () throws(VectorFailure) -> Vector in
                try Vector.load(directory.appendingPathComponent(name))
            }
            switch loaded {
            case .success(let vector):
                for transport in vector.transports {
                    cases.append(VectorCase(file: name, transport: transport, loaded: loaded))
                }
            case .failure:
                // Keep broken files visible as a failing case.
                cases.append(VectorCase(file: name, transport: .websocket, loaded: loaded))
            }
        }
        return cases
    }()
}

enum VectorTransport: String, Sendable, CaseIterable {
    case websocket
    case longPolling = "long-polling"
}

struct VectorFailure: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Vector model

struct Vector: Sendable {
    enum Step: Sendable {
        /// `send` with an array: one frame / POST holding that array. With an object: the bare
        /// object (no array around it).
        case send(client: String, payload: JSONValue)
        /// The next messages of the client's stream, in order, each subset-matched.
        case expect(client: String, messages: [JSONValue], withinMilliseconds: Int)
        /// Nothing may arrive for this long (WebSocket); nothing may be pending (long-polling).
        case expectNothing(client: String, milliseconds: Int)
    }

    let name: String
    let description: String
    let transports: [VectorTransport]
    let brokerConfiguration: JSONObject
    let steps: [Step]

    static var intFields: [String: WritableKeyPath<BrokerConfiguration, Int>] { [
        "connectTimeoutMilliseconds": \.connectTimeoutMilliseconds,
        "maxIntervalMilliseconds": \.maxIntervalMilliseconds,
        "maxMessageBytes": \.maxMessageBytes,
        "maxBatchBytes": \.maxBatchBytes,
        "maxMessagesPerBatch": \.maxMessagesPerBatch,
        "maxPendingBytesPerSession": \.maxPendingBytesPerSession,
        "maxSubscriptionsPerSession": \.maxSubscriptionsPerSession,
        "maxSessions": \.maxSessions,
    ] }
    static var boolFields: [String: WritableKeyPath<BrokerConfiguration, Bool>] { [
        "allowAnonymousPublish": \.allowAnonymousPublish,
    ] }

    func apply(to configuration: inout BrokerConfiguration) throws(VectorFailure) {
        for (key, value) in brokerConfiguration.members {
            if key == "channels" {
                // Channel options by pattern, as in a configuration file's `channels` object.
                guard let object = value.objectValue else {
                    throw VectorFailure("brokerConfiguration.channels must be an object, is \(value.jsonText)")
                }
                do {
                    configuration.channels = try ChannelPolicyTable.parse(object)
                } catch {
                    throw VectorFailure("brokerConfiguration.\(error.description)")
                }
            } else if let path = Self.intFields[key], let int = value.intValue {
                configuration[keyPath: path] = int
            } else if let path = Self.boolFields[key], let bool = value.boolValue {
                configuration[keyPath: path] = bool
            } else {
                throw VectorFailure("brokerConfiguration.\(key) = \(value.jsonText) is not a supported key/type")
            }
        }
    }

    static func load(_ url: URL) throws(VectorFailure) -> Vector {
        let file = url.lastPathComponent
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw VectorFailure("\(file): cannot read: \(error)")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(text)
        } catch {
            throw VectorFailure("\(file): invalid JSON: \(error)")
        }
        guard let object = root.objectValue else { throw VectorFailure("\(file): top level is not an object") }
        let known: Set<String> = ["name", "description", "transports", "brokerConfiguration", "steps"]
        if let unknown = object.members.first(where: { !known.contains($0.key) }) {
            throw VectorFailure("\(file): unknown top-level key \"\(unknown.key)\"")
        }
        guard let name = object["name"]?.stringValue else { throw VectorFailure("\(file): missing \"name\"") }
        guard let description = object["description"]?.stringValue else { throw VectorFailure("\(file): missing \"description\"") }
        guard let transportValues = object["transports"]?.arrayValue, !transportValues.isEmpty else {
            throw VectorFailure("\(file): \"transports\" must be a non-empty array")
        }
        var transports: [VectorTransport] = []
        for value in transportValues {
            guard let transport = value.stringValue.flatMap(VectorTransport.init(rawValue:)) else {
                throw VectorFailure("\(file): unknown transport \(value.jsonText)")
            }
            transports.append(transport)
        }
        var brokerConfiguration = JSONObject()
        if let config = object["brokerConfiguration"] {
            guard let o = config.objectValue else { throw VectorFailure("\(file): \"brokerConfiguration\" must be an object") }
            brokerConfiguration = o
        }
        guard let stepValues = object["steps"]?.arrayValue, !stepValues.isEmpty else {
            throw VectorFailure("\(file): \"steps\" must be a non-empty array")
        }
        var steps: [Step] = []
        for (index, value) in stepValues.enumerated() {
            guard let step = value.objectValue, let client = step["client"]?.stringValue else {
                throw VectorFailure("\(file): step \(index) needs an object with a \"client\" string")
            }
            let actions = step.members.map(\.key).filter { $0 != "client" && $0 != "within" }
            guard actions.count == 1, let action = actions.first else {
                throw VectorFailure("\(file): step \(index) needs exactly one of send/expect/expectNothing, has \(actions)")
            }
            switch (action, step[action]!) {
            case ("send", let payload) where payload.arrayValue != nil || payload.objectValue != nil:
                steps.append(.send(client: client, payload: payload))
            case ("expect", .array(let messages)) where !messages.isEmpty:
                steps.append(.expect(client: client, messages: messages, withinMilliseconds: step["within"]?.intValue ?? 2_000))
            case ("expectNothing", let ms) where ms.intValue != nil:
                steps.append(.expectNothing(client: client, milliseconds: ms.intValue!))
            default:
                throw VectorFailure("\(file): step \(index): bad \"\(action)\" value")
            }
        }
        return Vector(name: name, description: description, transports: transports, brokerConfiguration: brokerConfiguration, steps: steps)
    }
}

// MARK: - Runner

/// Runs one vector over one transport. Each client's stream is everything it received, in
/// arrival order: WebSocket frames from its socket, or the bodies of its POSTs.
actor VectorRunner {
    let vector: Vector
    let transport: VectorTransport
    let port: Int
    private var sockets: [String: TestWebSocket] = [:]
    private var pending: [String: [JSONValue]] = [:]
    private var captures: [String: JSONValue] = [:]

    init(vector: Vector, transport: VectorTransport, port: Int) {
        self.vector = vector
        self.transport = transport
        self.port = port
        // Predefined: the transport's connectionType name, for /meta/connect.
        self.captures = ["transport": .string(transport.rawValue)]
    }

    func run() async throws {
        for (index, step) in vector.steps.enumerated() {
            do {
                switch step {
                case .send(let client, let payload):
                    try await send(client: client, payload: substitute(payload))
                case .expect(let client, let messages, let within):
                    try await expect(client: client, messages: messages, within: within)
                case .expectNothing(let client, let milliseconds):
                    try await expectNothing(client: client, milliseconds: milliseconds)
                }
            } catch let failure as VectorFailure {
                throw VectorFailure("step \(index) (client \(Self.client(of: step))): \(failure.description)")
            } catch {
                throw VectorFailure("step \(index) (client \(Self.client(of: step))): \(error)")
            }
        }
        let leftovers = pending.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        if !leftovers.isEmpty {
            let text = leftovers.map { "client \($0.key) received \(JSONValue.array($0.value).jsonText)" }.joined(separator: "; ")
            throw VectorFailure("after the last step, messages were left unexpected: \(text)")
        }
    }

    func closeAll() async {
        for socket in sockets.values { await socket.close() }
        sockets.removeAll()
    }

    static func client(of step: Vector.Step) -> String {
        switch step {
        case .send(let c, _), .expect(let c, _, _), .expectNothing(let c, _): return c
        }
    }

    // MARK: Transport

    private func socket(_ client: String) async throws -> TestWebSocket {
        if let socket = sockets[client] { return socket }
        let socket = try await TestWebSocket.connect(port: port, on: LiveServer.group)
        sockets[client] = socket
        return socket
    }

    private func send(client: String, payload: JSONValue) async throws {
        switch transport {
        case .websocket:
            try await socket(client).send(payload.jsonText)
        case .longPolling:
            let response = try await TestHTTP.postJSON(payload.jsonText, port: port, timeout: .seconds(5), on: LiveServer.group)
            guard response.status == 200 else {
                throw VectorFailure("POST \(payload.jsonText) answered HTTP \(response.status): \(response.text)")
            }
            pending[client, default: []] += try Self.messages(response.text)
        }
    }

    static func messages(_ text: String) throws(VectorFailure) -> [JSONValue] {
        guard let parsed = try? JSONParser.parse(text), case .array(let items) = parsed else {
            throw VectorFailure("received a body that is not a JSON array: \(text)")
        }
        return items
    }

    /// Reads one more WebSocket frame into `client`'s stream; false on timeout.
    private func receiveFrame(client: String, timeout: Duration) async throws -> Bool {
        let socket = try await socket(client)
        do {
            let text = try await socket.receive(timeout: timeout)
            pending[client, default: []] += try Self.messages(text)
            return true
        } catch TestWebSocketError.timeout {
            return false
        }
    }

    // MARK: Steps

    private func expect(client: String, messages: [JSONValue], within: Int) async throws {
        let deadline = ContinuousClock.now + .milliseconds(within)
        for (position, expected) in messages.enumerated() {
            if transport == .websocket {
                while pending[client, default: []].isEmpty {
                    let remaining = ContinuousClock.now.duration(to: deadline)
                    if remaining <= .zero { break }
                    let received = try await receiveFrame(client: client, timeout: remaining)
                    if !received { break }
                }
            }
            let expectedText = substituteForDisplay(expected).jsonText
            guard !(pending[client]?.isEmpty ?? true) else {
                let wait = transport == .websocket ? " within \(within) ms" : " (long-polling: the previous POSTs returned no more)"
                throw VectorFailure("expected message \(position) \(expectedText), received nothing\(wait)")
            }
            let received = pending[client]!.removeFirst()
            var newCaptures = captures
            if let mismatch = match(expected, received, path: "", captures: &newCaptures) {
                throw VectorFailure("message \(position): \(mismatch)\n  expected: \(expectedText)\n  received: \(received.jsonText)")
            }
            captures = newCaptures
        }
    }

    private func expectNothing(client: String, milliseconds: Int) async throws {
        if transport == .websocket, pending[client, default: []].isEmpty {
            _ = try await receiveFrame(client: client, timeout: .milliseconds(milliseconds))
        }
        if let first = pending[client]?.first {
            throw VectorFailure("expected nothing, received \(first.jsonText) (stream: \(JSONValue.array(pending[client]!).jsonText))")
        }
    }

    // MARK: Matching

    /// Returns nil when `received` matches `expected`, else a description of the first mismatch.
    private func match(_ expected: JSONValue, _ received: JSONValue, path: String, captures: inout [String: JSONValue]) -> String? {
        let at = path.isEmpty ? "top level" : path
        switch expected {
        case .string("$any"):
            return nil
        case .string(let s) where s.hasPrefix("$capture:"):
            captures[String(s.dropFirst("$capture:".count))] = received
            return nil
        case .string(let s):
            let wanted = Self.substitute(string: s, captures)
            if case .string(let got) = wanted, received == .string(got) { return nil }
            if case .string = wanted {} else if Self.equal(wanted, received) { return nil }
            return "at \(at): expected \(wanted.jsonText), received \(received.jsonText)"
        case .object(let object) where object.members.count == 1 && object.members[0].key == "$contains":
            // {"$contains": [e1, e2]}: an array holding a match for each element, any order,
            // other elements allowed.
            guard case .array(let wanted) = object.members[0].value, case .array(let got) = received else {
                return "at \(at): expected an array containing \(object.members[0].value.jsonText), received \(received.jsonText)"
            }
            for element in wanted {
                let found = got.contains { candidate in
                    var scratch = captures
                    return match(element, candidate, path: path, captures: &scratch) == nil
                }
                if !found {
                    return "at \(at): expected an array containing \(Self.substitute(element, captures).jsonText), received \(received.jsonText)"
                }
            }
            return nil
        case .object(let object):
            guard case .object(let got) = received else {
                return "at \(at): expected an object, received \(received.jsonText)"
            }
            for (key, value) in object.members {
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                if value == .string("$absent") {
                    if let present = got[key] { return "at \(keyPath): expected absent, received \(present.jsonText)" }
                    continue
                }
                guard let gotValue = got[key] else { return "at \(keyPath): missing" }
                if let mismatch = match(value, gotValue, path: keyPath, captures: &captures) { return mismatch }
            }
            return nil
        case .array(let items):
            guard case .array(let got) = received else {
                return "at \(at): expected an array, received \(received.jsonText)"
            }
            guard got.count == items.count else {
                return "at \(at): expected \(items.count) elements, received \(got.count): \(received.jsonText)"
            }
            for (i, (e, r)) in zip(items, got).enumerated() {
                if let mismatch = match(e, r, path: "\(path)[\(i)]", captures: &captures) { return mismatch }
            }
            return nil
        default:
            return Self.equal(expected, received) ? nil : "at \(at): expected \(expected.jsonText), received \(received.jsonText)"
        }
    }

    /// Scalars: same JSON type and value. Integers compare digit for digit (17-digit ids must
    /// survive); other numbers by value, so `1.0` matches `1.00`.
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)):
            if x == y { return true }
            let isInteger = { (s: String) in s.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "-") } }
            if isInteger(x) && isInteger(y) { return false }
            return Double(x) != nil && Double(x) == Double(y)
        case (.object, _), (.array, _):
            return a.jsonText == b.jsonText
        default:
            return a == b
        }
    }

    // MARK: Substitution

    private func substitute(_ value: JSONValue) -> JSONValue {
        Self.substitute(value, captures)
    }

    private func substituteForDisplay(_ value: JSONValue) -> JSONValue {
        Self.substitute(value, captures)
    }

    static func substitute(_ value: JSONValue, _ captures: [String: JSONValue]) -> JSONValue {
        switch value {
        case .string(let s): return substitute(string: s, captures)
        case .array(let items): return .array(items.map { substitute($0, captures) })
        case .object(let object):
            return .object(JSONObject(object.members.map { ($0.key, substitute($0.value, captures)) }))
        default: return value
        }
    }

    /// `"$NAME"` alone becomes the captured value; `$NAME` inside a longer string is replaced
    /// by the captured string. `$$` is a literal `$`. Names not captured are left as they are.
    static func substitute(string s: String, _ captures: [String: JSONValue]) -> JSONValue {
        guard s.contains("$"), !s.hasPrefix("$capture:"), s != "$any", s != "$absent" else { return .string(s) }
        if s.hasPrefix("$"), let value = captures[String(s.dropFirst())] { return value }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            guard c == "$" else { out.append(c); i = s.index(after: i); continue }
            let next = s.index(after: i)
            if next < s.endIndex, s[next] == "$" {
                out.append("$")
                i = s.index(after: next)
                continue
            }
            var end = next
            while end < s.endIndex, s[end].isLetter || s[end].isNumber || s[end] == "_" { end = s.index(after: end) }
            if case .string(let captured)? = captures[String(s[next..<end])] {
                out += captured
            } else {
                out += s[i..<end]
            }
            i = end
        }
        return .string(out)
    }
}
