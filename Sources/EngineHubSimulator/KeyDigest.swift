import Crypto

/// The protocol's key digest: lowercase hex SHA-256 of the key's UTF-8 text.
enum KeyDigest {
    static func hex(of key: PresentedKey) -> String {
        let digest = SHA256.hash(data: Array(key.text.utf8))
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// Whether `key` hashes to `storedHex`, comparing in time that depends only on the lengths
    /// (which are public: always 64 for a well-formed digest).
    static func matches(_ key: PresentedKey, storedHex: String) -> Bool {
        let expected = Array(storedHex.lowercased().utf8)
        let actual = Array(hex(of: key).utf8)
        guard expected.count == actual.count else { return false }
        var difference: UInt8 = 0
        for index in expected.indices {
            difference |= expected[index] ^ actual[index]
        }
        return difference == 0
    }
}
