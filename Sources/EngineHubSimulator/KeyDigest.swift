import Crypto

/// The protocol's key digest: lowercase hex SHA-256 of the key's UTF-8 text.
enum KeyDigest {
    static func hex(of key: PresentedKey) -> String {
        hexText(Array(SHA256.hash(data: Array(key.text.utf8))))
    }

    /// `bytes` as lowercase hex.
    static func hexText(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(bytes.count * 2)
        for byte in bytes {
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
