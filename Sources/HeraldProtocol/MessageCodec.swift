public import NIOCore

/// Decodes Bayeux batches: a JSON array of message objects, or a single object.
public enum MessageCodec {
    public enum DecodeError: Error, Equatable, CustomStringConvertible, Sendable {
        /// Not JSON, or not UTF-8.
        case invalidJSON(JSONParser.Error)
        /// Valid JSON, but not a message object or an array of message objects.
        case wrongShape(String)
        /// More messages than allowed in one batch.
        case tooManyMessages(limit: Int)

        public var description: String {
            switch self {
            case .invalidJSON(let e): return e.description
            case .wrongShape(let s): return s
            case .tooManyMessages(let limit): return "more than \(limit) messages in one batch"
            }
        }
    }

    /// Decodes `buffer` (its readable bytes) into messages. `data` values are slices of
    /// `buffer`, so they share its storage.
    public static func decodeBatch(_ buffer: ByteBuffer, maxMessages: Int = 1024) throws(DecodeError) -> [BayeuxMessage] {
        let result: Result<[BayeuxMessage], DecodeError> = buffer.withUnsafeReadableBytes { bytes in
            var parser = JSONParser(bytes: bytes)
            do {
                var messages: [BayeuxMessage] = []
                parser.skipWhitespace()
                switch parser.peek() {
                case UInt8(ascii: "["):
                    _ = parser.consume(UInt8(ascii: "["))
                    if !parser.consume(UInt8(ascii: "]")) {
                        repeat {
                            parser.skipWhitespace()
                            guard parser.peek() != nil else { throw parser.fail("unexpected end of input") }
                            guard parser.peek() == UInt8(ascii: "{") else {
                                // Tell "valid JSON of the wrong shape" from "not JSON at all".
                                repeat { _ = try parser.skipValue() } while parser.consume(UInt8(ascii: ","))
                                try parser.expect(UInt8(ascii: "]"))
                                parser.skipWhitespace()
                                guard parser.isAtEnd else { throw parser.fail("trailing characters") }
                                return .failure(.wrongShape("expected a JSON array of message objects"))
                            }
                            guard messages.count < maxMessages else { return .failure(.tooManyMessages(limit: maxMessages)) }
                            messages.append(try decodeMessage(&parser, buffer: buffer))
                        } while parser.consume(UInt8(ascii: ","))
                        try parser.expect(UInt8(ascii: "]"))
                    }
                case UInt8(ascii: "{"):
                    messages.append(try decodeMessage(&parser, buffer: buffer))
                case nil:
                    return .failure(.invalidJSON(parser.fail("empty input")))
                default:
                    // Tell "valid JSON of the wrong shape" from "not JSON at all".
                    var probe = parser
                    if (try? probe.skipValue()) != nil {
                        probe.skipWhitespace()
                        if probe.isAtEnd { return .failure(.wrongShape("expected a JSON array of message objects")) }
                    }
                    _ = try parser.skipValue()
                }
                parser.skipWhitespace()
                guard parser.isAtEnd else { throw parser.fail("trailing characters after the message") }
                return .success(messages)
            } catch let error as JSONParser.Error {
                return .failure(.invalidJSON(error))
            } catch {
                return .failure(.wrongShape("\(error)"))
            }
        }
        return try result.get()
    }

    static func decodeMessage(_ parser: inout JSONParser, buffer: ByteBuffer) throws -> BayeuxMessage {
        parser.skipWhitespace()
        let start = parser.position
        try parser.expect(UInt8(ascii: "{"))
        try parser.enter()
        var message = BayeuxMessage()
        if !parser.consume(UInt8(ascii: "}")) {
            repeat {
                let key = try parseKey(&parser)
                try parser.expect(UInt8(ascii: ":"))
                switch key {
                case .data:
                    let range = try parser.skipValue()
                    message.data = buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)
                case .channel: message.channel = try string(&parser, field: "channel", into: &message)
                case .clientId: message.clientId = try string(&parser, field: "clientId", into: &message)
                case .connectionType: message.connectionType = try string(&parser, field: "connectionType", into: &message)
                case .version: message.version = try string(&parser, field: "version", into: &message)
                case .minimumVersion: message.minimumVersion = try string(&parser, field: "minimumVersion", into: &message)
                case .id:
                    let value = try parser.parseValue()
                    switch value {
                    case .string(let text) where text.utf8.count > BayeuxMessage.maxIdBytes:
                        // Never echoed: a long id in every message of a flood would make each
                        // reply as large as the request (issue: 60,000-character ids).
                        message.malformedField = "id"
                        message.idTooLong = true
                    case .number(let text) where text.utf8.count > BayeuxMessage.maxIdBytes:
                        message.malformedField = "id"
                        message.idTooLong = true
                    case .string, .number: message.id = value
                    case .null: message.id = nil
                    default: message.malformedField = "id"
                    }
                case .ext:
                    let value = try parser.parseValue()
                    if case .object(let o) = value { message.ext = o } else if value != .null { message.malformedField = "ext" }
                case .advice:
                    let value = try parser.parseValue()
                    if case .object(let o) = value { message.advice = o } else if value != .null { message.malformedField = "advice" }
                case .subscription: message.subscription = try parser.parseValue()
                case .supportedConnectionTypes:
                    let value = try parser.parseValue()
                    if let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) {
                        message.supportedConnectionTypes = items.compactMap(\.stringValue)
                    } else {
                        message.malformedField = "supportedConnectionTypes"
                    }
                case .successful:
                    message.successful = try parser.parseValue().boolValue
                case .error:
                    message.error = try string(&parser, field: "error", into: &message)
                case .other:
                    _ = try parser.skipValue()
                }
            } while parser.consume(UInt8(ascii: ","))
            try parser.expect(UInt8(ascii: "}"))
        }
        parser.depth -= 1
        message.byteCount = parser.position - start
        return message
    }

    static func string(_ parser: inout JSONParser, field: String, into message: inout BayeuxMessage) throws -> String? {
        parser.skipWhitespace()
        if parser.peek() == UInt8(ascii: "\"") { return try parser.parseString() }
        let value = try parser.parseValue()
        if value != .null { message.malformedField = field }
        return nil
    }

    /// The fields of a message that Herald reads.
    enum Key {
        case data, channel, clientId, connectionType, version, minimumVersion, id, ext, advice, subscription, supportedConnectionTypes, successful, error, other
    }

    static let keys: [(bytes: [UInt8], key: Key)] = ([
        ("data", .data), ("channel", .channel), ("clientId", .clientId), ("id", .id), ("ext", .ext),
        ("connectionType", .connectionType), ("version", .version), ("minimumVersion", .minimumVersion),
        ("advice", .advice), ("subscription", .subscription), ("supportedConnectionTypes", .supportedConnectionTypes),
        ("successful", .successful), ("error", .error),
    ] as [(String, Key)]).map { (Array($0.0.utf8), $0.1) }

    /// Reads a member name. Names without escapes are compared as bytes (no `String` is made);
    /// anything else goes through `parseString`, which also checks UTF-8.
    static func parseKey(_ parser: inout JSONParser) throws -> Key {
        parser.skipWhitespace()
        let start = parser.position
        if parser.peek() == UInt8(ascii: "\"") {
            var end = start + 1
            while end < parser.bytes.count, parser.bytes[end] != UInt8(ascii: "\""), parser.bytes[end] != UInt8(ascii: "\\") { end += 1 }
            if end < parser.bytes.count, parser.bytes[end] == UInt8(ascii: "\"") {
                let name = UnsafeRawBufferPointer(rebasing: parser.bytes[(start + 1)..<end])
                for candidate in keys where candidate.bytes.count == name.count && candidate.bytes.elementsEqual(name) {
                    parser.skip(to: end + 1)
                    return candidate.key
                }
            }
        }
        let name = try parser.parseString()
        for candidate in keys where candidate.bytes.elementsEqual(name.utf8) { return candidate.key }
        return .other
    }
}
