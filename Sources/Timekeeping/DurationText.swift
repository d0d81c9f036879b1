import Foundation

/// Durations as operators write and read them: "500ms", "30s", "5m", "1h", "1h30m".
public enum DurationText {
    /// "500ms", "30s", "5m", "1h", or a bare number of seconds; nil when it is none of those.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count)), number.isFinite, number >= 0 else { return nil }
            return .milliseconds(Int64((number * scale * 1000).rounded()))
        }
        guard let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// The shortest exact form `parse` reads back: 900 s → "15m", 90 s → "1m30s", 0.5 s → "500ms".
    /// Below a second, milliseconds; from a second up, whole hours, minutes and seconds (rounded
    /// down to the second).
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 { return "\(max(0, milliseconds))ms" }
        var seconds = milliseconds / 1000
        var text = ""
        for (unit, size) in [("h", Int64(3600)), ("m", 60), ("s", 1)] where seconds >= size {
            text += "\(seconds / size)\(unit)"
            seconds %= size
        }
        return text
    }
}
