import Foundation

/// Bearer tokens.
extension SimulatedAccount {
    /// The request's bearer token when it is one of the accepted ones.
    func authenticatedToken(_ request: SimulatedDigitalOcean.Request) -> String? {
        guard let token = Self.bearerToken(request.header("authorization")), tokens.contains(token) else { return nil }
        return token
    }

    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }
}
