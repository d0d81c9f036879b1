/// Untrusted text (row names, DigitalOcean's error texts) as a terminal or a log may show it.
public enum TerminalText {
    /// One line, and nothing in it can drive the terminal that shows it: line breaks and tabs
    /// become `\n`, `\r`, `\t`; every other C0 or C1 control, DEL, U+2028/2029 and the
    /// bidirectional overrides (text that reads differently than it is) become `\u{..}`.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(scalar): out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Whether `escaped` rewrites this scalar.
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1 (0x9B is a one-byte CSI)
        case 0x2028, 0x2029: true  // line and paragraph separators: line breaks to some readers
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true  // bidi controls
        default: false
        }
    }
}
