/// Generates Bayeux clientIds: 160 bits from the system's CSPRNG, as 40 lowercase hex
/// characters (the spec asks for at least 128 random bits, alphanumeric).
enum ClientID {
    static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(40)
        for _ in 0..<5 {
            var word = rng.next() as UInt32
            for _ in 0..<8 {
                bytes.append(digits[Int(word & 0xF)])
                word >>= 4
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
