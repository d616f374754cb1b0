#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Generates Bayeux clientIds: 160 bits from the system's CSPRNG, as 40 lowercase hex
/// characters (the spec asks for at least 128 random bits, alphanumeric).
enum ClientID {
    static func generate() -> String {
        let digits = Array("0123456789abcdef".utf8)
        let random = SecureRandomPool.shared.bytes(20)
        var text = [UInt8]()
        text.reserveCapacity(40)
        for byte in random {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// Bytes from the kernel's CSPRNG (`/dev/urandom`, `arc4random_buf` on Darwin), fetched 4 KiB
/// at a time: `SystemRandomNumberGenerator` makes one system call per 8 bytes, which was five
/// calls per handshake. Bytes are handed out once and never reused. (Glibc's module map does not
/// export `getrandom(2)`.)
final class SecureRandomPool: Sendable {
    static let shared = SecureRandomPool()
    private static let refill = 4096

    private struct State {
        var buffer = [UInt8](repeating: 0, count: SecureRandomPool.refill)
        var next = SecureRandomPool.refill
    }

    private let state = Mutex(State())

    func bytes(_ count: Int) -> [UInt8] {
        precondition(count <= Self.refill)
        return state.withLock { state in
            if state.next + count > state.buffer.count {
                state.buffer.withUnsafeMutableBytes { Self.fill($0) }
                state.next = 0
            }
            defer { state.next += count }
            return Array(state.buffer[state.next..<state.next + count])
        }
    }

    private static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        #if canImport(Darwin)
        arc4random_buf(buffer.baseAddress!, buffer.count)
        #else
        var filled = 0
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            while filled < buffer.count {
                let n = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
                if n > 0 {
                    filled += n
                } else if n == 0 || errno != EINTR {
                    break
                }
            }
        }
        if filled < buffer.count {
            // No /dev/urandom (a bare chroot): the standard library's generator, a word at a time.
            var rng = SystemRandomNumberGenerator()
            for i in filled..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: rng.next() as UInt64) }
        }
        #endif
    }
}
