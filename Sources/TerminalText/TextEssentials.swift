// Foundation's string searching and trimming, which FoundationEssentials lacks: the daemon's
// modules import only FoundationEssentials, so that the executable leaves out
// FoundationInternationalization and ICU (BENCHMARKS.md, "Idle resident size"). Only the core
// standard library here: `firstRange(of:)` and `replacing(_:with:)` of _StringProcessing would
// bring its code (and, for a regex, its parser) into memory at start-up.

extension StringProtocol {
    /// Without leading and trailing whitespace and line breaks: `trimmingCharacters(in:
    /// .whitespacesAndNewlines)`.
    public func trimmingWhitespace() -> String {
        trimming { $0.isWhitespace }
    }

    /// Without leading and trailing spaces and tabs, line breaks kept: `trimmingCharacters(in:
    /// .whitespaces)`.
    public func trimmingSpaces() -> String {
        trimming { $0.isWhitespace && !$0.isNewline }
    }

    private func trimming(_ drop: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !drop($0) }), let last = lastIndex(where: { !drop($0) }) else {
            return ""
        }
        return String(self[first...last])
    }

    /// Where `target` first occurs, comparing characters as `==` does; with `ignoringCase`, by their
    /// lowercase forms. Foundation's `range(of:options:)`, for short texts. Nil for an empty target.
    public func range(ofText target: String, ignoringCase: Bool = false) -> Range<Index>? {
        let wanted = ignoringCase ? Array(target.lowercased()) : Array(target)
        guard !wanted.isEmpty else { return nil }
        var start = startIndex
        while start < endIndex {
            var index = start
            var matched = 0
            while matched < wanted.count, index < endIndex {
                let character = self[index]
                guard ignoringCase ? character.lowercased() == String(wanted[matched]) : character == wanted[matched]
                else { break }
                matched += 1
                index = self.index(after: index)
            }
            if matched == wanted.count { return start..<index }
            start = self.index(after: start)
        }
        return nil
    }

    /// Every occurrence of `target`, left to right, replaced by `replacement`: Foundation's
    /// `replacingOccurrences(of:with:)`. An empty target replaces nothing.
    public func replacingAll(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.range(ofText: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
