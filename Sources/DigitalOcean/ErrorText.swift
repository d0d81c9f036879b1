#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TerminalText

/// What the client lets into an error's text: every word of it ends up in `last_error`, STATUS=
/// and the journal. Text from DigitalOcean is capped; transport errors are described in wording of
/// our own (`TransportFailure.summary`: AsyncHTTPClient's descriptions can echo request headers,
/// the `Authorization` one too); and the token is cut out of whatever is left.
public enum ErrorText {
    /// The most of DigitalOcean's own text (an error body's `message`, a link) one error carries.
    public static let limit = 1024

    /// `text` cut to at most `limit` bytes of UTF-8 (on a character boundary), saying so when cut.
    public static func capped(_ text: String, limit: Int = ErrorText.limit) -> String {
        let total = text.utf8.count
        guard total > limit else { return text }
        var kept = ""
        var bytes = 0
        for character in text {
            let size = character.utf8.count
            guard bytes + size <= limit else { break }
            kept.append(character)
            bytes += size
        }
        return kept + "… [cut: \(total) bytes in all]"
    }

    /// `text` with every occurrence of `secret` replaced (a secret shorter than 4 characters is not
    /// looked for: it would match everywhere and the token is never that short).
    public static func redacting(_ secret: String, in text: String) -> String {
        guard secret.count >= 4 else { return text }
        return text.replacingAll(secret, with: "[redacted]")
    }
}

extension DigitalOceanError {
    /// This error with `secret` cut out of every text field (defence in depth: it should never be
    /// there in the first place).
    public func redacting(token secret: String) -> DigitalOceanError {
        var error = self
        error.message = ErrorText.redacting(secret, in: error.message)
        error.operation = error.operation.map { ErrorText.redacting(secret, in: $0) }
        error.apiErrorID = error.apiErrorID.map { ErrorText.redacting(secret, in: $0) }
        error.requestID = error.requestID.map { ErrorText.redacting(secret, in: $0) }
        error.underlying = error.underlying.map { ErrorText.redacting(secret, in: $0) }
        return error
    }
}
