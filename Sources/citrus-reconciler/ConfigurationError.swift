import ArgumentParser
import CommandLineSupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// Bad configuration: the daemon prints one line saying what to fix and exits 78 (EX_CONFIG), which
/// the unit's `RestartPreventExitStatus=78` keeps systemd from restarting in a loop.
struct ConfigurationError: Error, CustomStringConvertible {
    static let exitCode = ConfigurationExit.code
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

extension ConfigurationError {
    /// Prints the error as one line on stderr and returns the exit code to throw.
    func report(command: String) -> ExitCode {
        ConfigurationExit.report(description, program: "citrus-reconciler \(command)")
    }
}

extension ConfigurationError {
    /// A flag's (or its environment variable's) whole-number value; nil when neither was given.
    static func wholeNumber(
        _ flag: String,
        _ text: String?,
        in range: ClosedRange<Int>
    ) throws(ConfigurationError) -> Int? {
        guard let text else { return nil }
        guard let n = Int(text), range.contains(n) else {
            throw ConfigurationError(
                "--\(flag) \"\(text)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)"
            )
        }
        return n
    }
}

extension ConfigurationError {
    /// A flag's (or its environment variable's) duration within `range`; nil when neither was
    /// given. Anything else, unreadable or out of range (`1e300s`), names the flag and the range.
    static func duration(
        _ flag: String,
        _ text: String?,
        in range: ClosedRange<Duration>
    ) throws(ConfigurationError) -> Duration? {
        guard let text else { return nil }
        guard let parsed = DurationText.parse(text), range.contains(parsed) else {
            throw ConfigurationError(
                "--\(flag) \"\(text)\" must be a duration from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound)), such as 500ms, 30s, 5m or 1h30m"
            )
        }
        return parsed
    }
}

/// The range of every duration a flag takes (documented in each flag's help and in the README).
enum DurationRange {
    static let resyncInterval: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)
    static let fastInterval: ClosedRange<Duration> = .milliseconds(100) ... .seconds(3600)
    static let settlePeriod: ClosedRange<Duration> = .seconds(1) ... .seconds(3600)
    static let orphanGrace: ClosedRange<Duration> = .zero ... .seconds(30 * 86_400)
    static let bootstrapTimeout: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)
    static let agentStaleAfter: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)

    /// "1s…1d", for help texts.
    static func text(_ range: ClosedRange<Duration>) -> String {
        "\(DurationText.format(range.lowerBound))…\(DurationText.format(range.upperBound))"
    }
}
