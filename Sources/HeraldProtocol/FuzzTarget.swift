import NIOCore

/// What the fuzz target (`Fuzz/HeraldFuzz`, libFuzzer) runs on each input, and what the
/// corpus test runs on every kept input: everything a client controls on the wire. A failed
/// check traps, which libFuzzer reports as a crash and keeps as a reproducer.
///
/// - The JSON parser either refuses the input or reads a value that the writer writes back
///   to the same value.
/// - The message decoder either refuses the input or returns messages no larger than it.
/// - The channel grammar: a valid name is a literal pattern that matches itself; a valid
///   wildcard pattern matches a name one segment below its prefix.
package enum FuzzTarget {
    package static func run(_ bytes: UnsafeRawBufferPointer) {
        if let text = String(validating: bytes, as: UTF8.self) {
            checkJSON(text)
            checkChannel(text)
        }
        let buffer = ByteBuffer(bytes: bytes)
        if let messages = try? MessageCodec.decodeBatch(buffer) {
            for message in messages {
                precondition(message.byteCount <= bytes.count, "a message larger than its batch")
                if let channel = message.channel { checkChannel(channel) }
            }
        }
    }

    static func checkJSON(_ text: String) {
        guard let value = try? JSONParser.parse(text) else { return }
        var written = ByteBuffer()
        written.writeJSON(value)
        let again = try? JSONParser.parse(String(buffer: written))
        precondition(again == value, "the writer changed a value: \(String(buffer: written))")
    }

    static func checkChannel(_ text: String) {
        if let name = ChannelName(text) {
            precondition(name.rawValue == text)
            guard let pattern = ChannelPattern(text) else { preconditionFailure("a valid name is not a valid pattern: \(text)") }
            precondition(!pattern.isWildcard && pattern.matches(name), "a name does not match itself: \(text)")
        }
        if let pattern = ChannelPattern(text), pattern.isWildcard {
            let stem = "/" + pattern.prefix.joined(separator: "/")
            if let below = ChannelName((stem == "/" ? "" : stem) + "/x") {
                precondition(pattern.matches(below), "\(text) does not match \(below.rawValue)")
            }
            if let own = ChannelName(stem) {
                precondition(!pattern.matches(own), "\(text) matches its own prefix \(stem)")
            }
        }
    }
}
