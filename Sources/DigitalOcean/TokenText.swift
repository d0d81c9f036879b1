extension DigitalOceanToken {
    /// The longest token accepted: DigitalOcean's are 71 characters; room for other issuers.
    public static let maximumLength = 4096

    /// Why `text` (already trimmed) cannot be a token, or nil when it can. Never quotes the text:
    /// a token is printable ASCII without spaces, which is also all an HTTP header may carry
    /// without the client refusing it (and echoing it in its error).
    public static func problem(with text: String) -> String? {
        if text.isEmpty { return "is empty" }
        if text.utf8.count > maximumLength {
            return "is \(text.utf8.count) bytes long; a token is at most \(maximumLength)"
        }
        if let index = text.utf8.firstIndex(where: { !(0x21...0x7E).contains($0) }) {
            let position = text.utf8.distance(from: text.utf8.startIndex, to: index) + 1
            let byte = text.utf8[index]
            let kind =
                byte < 0x20 || byte == 0x7F ? "a control character" : byte == 0x20 ? "a space" : "a non-ASCII character"
            return "holds \(kind) at byte \(position); a token is printable ASCII only"
        }
        return nil
    }
}
