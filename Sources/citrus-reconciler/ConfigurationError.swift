import ArgumentParser
import Foundation
import Timekeeping

/// Bad configuration: the daemon prints one line saying what to fix and exits 78 (EX_CONFIG), which
/// the unit's `RestartPreventExitStatus=78` keeps systemd from restarting in a loop.
struct ConfigurationError: Error, CustomStringConvertible {
    static let exitCode = ExitCode(78)
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

extension ConfigurationError {
    /// Prints the error as one line on stderr and returns the exit code to throw.
    func report(command: String) -> ExitCode {
        FileHandle.standardError.write(Data("citrus-reconciler \(command): configuration error: \(description)\n".utf8))
        return Self.exitCode
    }
}

extension ConfigurationError {
    /// A flag's (or its environment variable's) whole-number value; nil when neither was given.
    static func wholeNumber(_ flag: String, _ text: String?, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let text else { return nil }
        guard let n = Int(text), range.contains(n) else {
            throw ConfigurationError("--\(flag) \"\(text)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }
}

extension ConfigurationError {
    /// A flag's (or its environment variable's) positive duration; nil when neither was given.
    static func duration(_ flag: String, _ text: String?) throws(ConfigurationError) -> Duration? {
        guard let text else { return nil }
        guard let parsed = DurationText.parse(text), parsed > .zero else {
            throw ConfigurationError("--\(flag) \"\(text)\" is not a positive duration such as 500ms, 30s, 5m or 1h")
        }
        return parsed
    }
}
