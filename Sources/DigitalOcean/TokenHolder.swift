import Synchronization

/// The token a client sends, replaceable while requests are in flight: each request reads it once,
/// when it builds its `Authorization` header.
final class TokenHolder: Sendable {
    private let token: Mutex<DigitalOceanToken>

    init(_ token: DigitalOceanToken) {
        self.token = Mutex(token)
    }

    var current: DigitalOceanToken { token.withLock { $0 } }

    /// Whether `newToken` differs from the one it replaces.
    func replace(with newToken: DigitalOceanToken) -> Bool {
        token.withLock { token in
            defer { token = newToken }
            return token.value != newToken.value
        }
    }
}
