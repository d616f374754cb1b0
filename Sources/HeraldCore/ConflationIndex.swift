/// A conflating session's pending message per channel: channel → logical position in the
/// session's queue (`Session.State.conflated`).
///
/// It is read and written on every delivery to such a session, and a session usually has a
/// few channels pending at a time: up to `smallLimit` entries are kept in an array and found
/// by comparing names, which for the shared `String` of one publish is a comparison of raw
/// bits, instead of hashing the channel name for a dictionary on every delivery (hashing was
/// about 7 % of the core in a conflating fanout). Past that, a dictionary.
struct ConflationIndex {
    static let smallLimit = 16

    private var small: [(channel: String, position: Int)] = []
    private var large: [String: Int]?

    var isEmpty: Bool { large?.isEmpty ?? small.isEmpty }

    subscript(channel: String) -> Int? {
        get {
            if let large { return large[channel] }
            for entry in small where entry.channel == channel { return entry.position }
            return nil
        }
        set {
            if large != nil {
                large![channel] = newValue
                return
            }
            if let index = small.firstIndex(where: { $0.channel == channel }) {
                if let newValue { small[index].position = newValue } else { small.remove(at: index) }
            } else if let newValue {
                if small.count < Self.smallLimit {
                    small.append((channel, newValue))
                } else {
                    var table = Dictionary(uniqueKeysWithValues: small.map { ($0.channel, $0.position) })
                    table[channel] = newValue
                    large = table
                    small = []
                }
            }
        }
    }

    mutating func removeAll() {
        small.removeAll(keepingCapacity: true)
        // A session that needed the dictionary once keeps it.
        large?.removeAll(keepingCapacity: true)
    }
}
