package import NIOCore

/// Copies pieces into a `ByteBuffer` with one capacity check and one write. The hot encoders
/// (deliveries, publish acknowledgements) write five or six pieces each, and a `ByteBuffer`
/// write per piece (a capacity check and a uniqueness check each) showed in profiles.
///
/// The pieces are listed once, in a closure that runs twice: first to count their bytes, then
/// to copy them. No byte count is written by hand, so none can drift from the pieces.
///
/// ```
/// buffer.writePieces { out in
///     out.append("{\"channel\":\"")
///     out.append(name)
/// }
/// ```
package struct PieceWriter: ~Copyable {
    /// Where the pieces go; nil while counting.
    private let base: UnsafeMutableRawBufferPointer?
    package private(set) var count = 0

    init(_ base: UnsafeMutableRawBufferPointer?) { self.base = base }

    /// The number of bytes `body` appends.
    package static func count(_ body: (inout PieceWriter) -> Void) -> Int {
        var counter = PieceWriter(nil)
        body(&counter)
        return counter.count
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if let base {
            precondition(count + bytes.count <= base.count, "PieceWriter: the pieces changed between counting and writing")
            if let source = bytes.baseAddress, !bytes.isEmpty {
                (base.baseAddress! + count).copyMemory(from: source, byteCount: bytes.count)
            }
        }
        count += bytes.count
    }

    package mutating func append(_ string: StaticString) {
        append(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    package mutating func append(_ string: String) {
        guard base != nil else {
            count += string.utf8.count
            return
        }
        var string = string
        string.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    package mutating func append(_ buffer: ByteBuffer) {
        guard base != nil else {
            count += buffer.readableBytes
            return
        }
        buffer.withUnsafeReadableBytes { append($0) }
    }
}

extension ByteBuffer {
    /// Writes the pieces `body` appends, in one step (see `PieceWriter`). `body` runs twice.
    package mutating func writePieces(_ body: (inout PieceWriter) -> Void) {
        writePieces(count: PieceWriter.count(body), body)
    }

    /// Writes the pieces `body` appends, whose total `PieceWriter.count(_:)` gave, in one step.
    package mutating func writePieces(count: Int, _ body: (inout PieceWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            var writer = PieceWriter(raw)
            body(&writer)
            assert(writer.count == count, "PieceWriter: \(writer.count) bytes written, \(count) announced")
            return writer.count
        }
    }
}
