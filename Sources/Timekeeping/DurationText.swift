#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TerminalText

/// Durations as operators write and read them: "500ms", "1.5s", "30s", "5m", "1h30m", "7d".
public enum DurationText {
    /// The longest duration `parse` accepts (100 years): far beyond any setting that makes sense,
    /// far below where arithmetic on it (`Date`, `Duration * n`) could overflow.
    public static let maximum: Duration = .seconds(100 * 365 * 86_400)

    private static let units: [(suffix: String, milliseconds: Double)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
    ]

    /// "500ms", "1.5s", "5m", "1h30m", "2d", or a bare number of seconds; to the millisecond. Nil
    /// when it is none of those, negative, or longer than ``maximum`` (`1e300s` is nil, not a crash).
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingSpaces().lowercased()
        guard !trimmed.isEmpty else { return nil }
        var rest = Substring(trimmed)
        if let seconds = number(&rest), rest.isEmpty {
            return duration(milliseconds: seconds * 1000)
        }
        rest = Substring(trimmed)
        var total = 0.0
        while !rest.isEmpty {
            guard let value = number(&rest) else { return nil }
            let suffix = rest.prefix { $0.isLetter }
            guard let unit = units.first(where: { $0.suffix == suffix }) else { return nil }
            rest = rest.dropFirst(suffix.count)
            total += value * unit.milliseconds
            guard total.isFinite, total <= maximumMilliseconds else { return nil }
        }
        return duration(milliseconds: total)
    }

    /// Digits with an optional fraction ("30", "1.5", ".5"); no sign, no exponent.
    private static func number(_ text: inout Substring) -> Double? {
        let digits = text.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !digits.isEmpty, digits.filter({ $0 == "." }).count <= 1, digits != ".", let value = Double(digits) else {
            return nil
        }
        text = text.dropFirst(digits.count)
        return value
    }

    private static let maximumMilliseconds = Double(maximum.components.seconds) * 1000

    private static func duration(milliseconds: Double) -> Duration? {
        guard milliseconds.isFinite, milliseconds >= 0, milliseconds <= maximumMilliseconds else { return nil }
        return .milliseconds(Int64(milliseconds.rounded()))
    }

    /// How an operator reads it, in a form `parse` reads back: 0.25 s → "250ms", 1.5 s → "1.5s",
    /// 90 s → "1m30s", 900 s → "15m", 86 400 s → "1d". Below a minute exact to the millisecond
    /// (trailing zeros dropped); from a minute up, days, hours, minutes and seconds, rounded to the
    /// nearest second. Zero and negative durations print as "0s".
    public static func format(_ duration: Duration) -> String {
        let (wholeSeconds, attoseconds) = duration.components
        guard wholeSeconds >= 0, attoseconds >= 0 else { return "0s" }
        // Whole milliseconds, rounded to the nearest (saturating: no Duration overflows this).
        let (scaled, overflow) = wholeSeconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return "\(wholeSeconds)s" }
        let milliseconds = scaled + (attoseconds + 500_000_000_000_000) / 1_000_000_000_000_000
        if milliseconds == 0 { return "0s" }
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        if milliseconds < 60_000 {
            let fraction = milliseconds % 1000
            guard fraction != 0 else { return "\(milliseconds / 1000)s" }
            var decimals = String(fraction + 1000).dropFirst()  // "005", "500"
            while decimals.hasSuffix("0") { decimals.removeLast() }
            return "\(milliseconds / 1000).\(decimals)s"
        }
        var seconds = (milliseconds + 500) / 1000
        var text = ""
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60), ("s", 1)] where seconds >= size {
            text += "\(seconds / size)\(unit)"
            seconds %= size
        }
        return text
    }
}
