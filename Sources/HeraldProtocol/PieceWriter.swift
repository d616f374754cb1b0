import NIOCore

/// Copies pieces of known total size into a `ByteBuffer` with one capacity check and one
/// write. The hot encoders (deliveries, publish acknowledgements) wrote five or six pieces
/// each, and a `ByteBuffer` write per piece (a capacity check and a uniqueness check each)
/// showed in profiles.
///
/// ```
/// buffer.writePieces(count: total) { out in
///     out.append("{\"channel\":\"")
///     out.append(name)
/// }
/// ```
public struct PieceWriter: ~Copyable {
    private let base: UnsafeMutableRawBufferPointer
    public private(set) var count = 0

    init(_ base: UnsafeMutableRawBufferPointer) { self.base = base }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        precondition(count + bytes.count <= base.count, "PieceWriter: more bytes than announced")
        if let source = bytes.baseAddress, !bytes.isEmpty {
            (base.baseAddress! + count).copyMemory(from: source, byteCount: bytes.count)
        }
        count += bytes.count
    }

    public mutating func append(_ string: StaticString) {
        append(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    public mutating func append(_ string: String) {
        var string = string
        string.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    public mutating func append(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { append($0) }
    }
}

extension ByteBuffer {
    /// Writes at most `count` bytes through `body` in one step (see `PieceWriter`).
    public mutating func writePieces(count: Int, _ body: (inout PieceWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            var writer = PieceWriter(raw)
            body(&writer)
            return writer.count
        }
    }
}
