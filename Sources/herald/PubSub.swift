import ArgumentParser
import Foundation
import HeraldClient
import HeraldProtocol
import Logging
import NIOCore
import NIOSSL
import UnixSignals

/// What `herald pub` and `herald sub` share: where to connect and how.
struct ClientOptions: ParsableArguments {
    @Option(name: .customLong("url"), help: "The broker's Bayeux endpoint (default ws://127.0.0.1:8080/bayeux; env HERALD_URL). ws/wss try WebSocket, then long-polling; http/https the same.")
    var url: String?
    @Option(name: .customLong("header"), help: "An HTTP header for the upgrade and every request, NAME:VALUE (repeatable).")
    var headers: [String] = []
    @Option(name: .customLong("ext"), help: "A JSON object added to the handshake's ext.")
    var ext: String?
    @Option(name: .customLong("token"), help: "A bearer token (JWT) for brokers that require one (env HERALD_TOKEN).")
    var token: String?
    @Option(name: .customLong("transport"), help: "websocket or long-polling (default: WebSocket, falling back to long-polling).")
    var transport: String?
    @Option(name: .customLong("ca-file"), help: "PEM file of the CA that signed the broker's certificate (for wss/https with a private CA).")
    var caFile: String?
    @Option(name: .customLong("timeout-ms"), help: "How long to wait for a connection or a reply, ms (default 10000).")
    var timeoutMilliseconds: Int = 10_000

    var resolvedURL: String {
        url ?? ProcessInfo.processInfo.environment["HERALD_URL"] ?? "ws://127.0.0.1:8080/bayeux"
    }

    func configuration() throws -> HeraldClientConfiguration {
        var configuration = HeraldClientConfiguration()
        for header in headers {
            guard let colon = header.firstIndex(of: ":"), colon != header.startIndex else {
                throw ValidationError("--header \(header): expected NAME:VALUE")
            }
            configuration.headers.append((String(header[..<colon]), header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        if let ext {
            guard let object = try? JSONParser.parse(ext).objectValue else {
                throw ValidationError("--ext: expected a JSON object, got \(ext)")
            }
            configuration.handshakeExtension = object
        }
        configuration.token = token ?? ProcessInfo.processInfo.environment["HERALD_TOKEN"]
        if let transport {
            guard let kind = HeraldClientConfiguration.Transport(rawValue: transport) else {
                throw ValidationError("--transport: websocket or long-polling, not \(transport)")
            }
            configuration.transports = [kind]
        }
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            configuration.tls = tls
        }
        configuration.connectTimeout = .milliseconds(timeoutMilliseconds)
        configuration.requestTimeout = .milliseconds(timeoutMilliseconds)
        return configuration
    }

    /// Warnings and errors on stderr; the commands print their own one-line errors.
    var logger: Logger {
        var logger = Logger(label: "herald.client") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        return logger
    }
}

/// Runs `body`; a client error becomes one line on stderr and exit status 1.
func reportingClientErrors(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as HeraldClientError {
        FileHandle.standardError.write(Data("herald \(command): \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct Sub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Subscribe and print one JSON line per message: {\"channel\":…,\"data\":…,\"ext\":…}.",
        discussion: "Ctrl-C unsubscribes and disconnects. Gaps (messages the broker no longer has after a reconnect) are reported on stderr."
    )

    @Argument(help: "A channel or pattern: /stocks/AAPL, /stocks/*, /stocks/**.")
    var pattern: String
    @Option(name: .customLong("replay"), parsing: .unconditional, help: "Where to start on a channel with history: -1 (new messages only), -2 (all history), or N (after offset N).")
    var replay: Int?
    @Option(name: .customLong("count"), help: "Exit after this many messages.")
    var count: Int?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        var start: HeraldReplay?
        if let replay {
            switch replay {
            case -1: start = .newOnly
            case -2: start = .all
            case 0...: start = .after(offset: replay)
            default: throw ValidationError("--replay: -1, -2 or an offset of 0 or more, not \(replay)")
            }
        }
        let configuration = try client.configuration()
        try await reportingClientErrors("sub") {
            try await HeraldClient.withConnection(to: client.resolvedURL, configuration: configuration, logger: client.logger) { connection in
                let subscription = try await connection.subscribe(pattern, replay: start)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var printed = 0
                        for try await event in subscription {
                            switch event {
                            case .message(let message):
                                Self.print(message)
                                printed += 1
                                if let count, printed >= count { return }
                            case .gap(let gap):
                                FileHandle.standardError.write(Data("herald sub: \(gap)\n".utf8))
                            }
                        }
                    }
                    group.addTask {
                        for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return }
                    }
                    try await group.next()
                    group.cancelAll()
                }
                await subscription.unsubscribe()
            }
        }
    }

    static func print(_ message: HeraldMessage<ByteBuffer>) {
        var line = ByteBuffer()
        line.writeString(#"{"channel":"#)
        line.writeJSONString(message.channel)
        line.writeString(#","data":"#)
        line.writeImmutableBuffer(message.data)
        if let ext = message.ext {
            line.writeString(#","ext":"#)
            line.writeJSON(ext)
        }
        line.writeString("}\n")
        FileHandle.standardOutput.write(Data(line.readableBytesView))
    }
}

struct Pub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a JSON message and wait for the broker's acknowledgement.",
        discussion: "With - as the message, each line of stdin is one JSON message, published in order with up to --window acknowledgements outstanding. A refused publish exits 1 with the broker's error on stderr."
    )

    @Argument(help: "The channel to publish to.")
    var channel: String
    @Argument(help: "The message's data, a JSON text; - reads one per line from stdin.")
    var json: String
    @Option(name: .customLong("window"), help: "With -, how many publishes may wait for their acknowledgement at once (default 256).")
    var window: Int = 256
    @Flag(name: .customLong("retain"), help: "The message is meant as the channel's retained (last) value: Herald refuses the publish unless the channel's options retain messages (retain is set per channel, in the configuration file). Other Bayeux servers ignore the request.")
    var retain = false
    @OptionGroup var client: ClientOptions

    /// Herald's `ext.herald.retain` (Protocol/PROTOCOL.md §11.3).
    var publishExtension: JSONObject? {
        retain ? JSONObject([("herald", .object(JSONObject([("retain", .bool(true))])))]) : nil
    }

    func validate() throws {
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
    }

    func run() async throws {
        let configuration = try client.configuration()
        try await reportingClientErrors("pub") {
            try await HeraldClient.withConnection(to: client.resolvedURL, configuration: configuration, logger: client.logger) { connection in
                guard json == "-" else {
                    try await connection.publish(json: json, to: channel, ext: publishExtension)
                    return
                }
                // Queued in line order; up to `window` acknowledgements outstanding.
                var pending: [HeraldPendingPublish] = []
                var acknowledged = 0
                var number = 0
                for await line in Self.standardInputLines() {
                    number += 1
                    guard !line.allSatisfy(\.isWhitespace) else { continue }
                    if pending.count - acknowledged == window {
                        try await pending[acknowledged].acknowledged()
                        acknowledged += 1
                    }
                    do {
                        pending.append(try await connection.enqueuePublish(json: ByteBuffer(string: line), to: channel, ext: publishExtension))
                    } catch var error as HeraldClientError where error.detail == "the data is not a JSON text" {
                        error.detail = "line \(number) is not a JSON text"
                        throw error
                    }
                    if acknowledged > 4096 {
                        pending.removeFirst(acknowledged)
                        acknowledged = 0
                    }
                }
                for publish in pending[acknowledged...] { try await publish.acknowledged() }
            }
        }
    }

    /// stdin's lines, read on a thread of their own (reads block).
    static func standardInputLines() -> AsyncStream<String> {
        AsyncStream(bufferingPolicy: .bufferingOldest(4096)) { continuation in
            Thread.detachNewThread {
                while let line = readLine(strippingNewline: true) {
                    // Wait while the publisher is behind, rather than buffer all of stdin.
                    while case .dropped = continuation.yield(line) { usleep(1000) }
                }
                continuation.finish()
            }
        }
    }
}
