import Synchronization

/// One copy of each string that many rows repeat: region, size and image slugs. A read of 50,000
/// rows would otherwise keep 200,000 heap copies of a handful of strings (Swift keeps strings of
/// up to 15 bytes inline; those need no pool). It lives as long as one read.
final class StringPool: Sendable {
    private let strings = Mutex<Set<String>>([])

    func shared(_ string: String) -> String {
        guard string.utf8.count > 15 else { return string }
        return strings.withLock { $0.insert(string).memberAfterInsert }
    }

    func shared(_ string: String?) -> String? {
        string.map(shared)
    }
}
