#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import Logging

/// Where log entries go; the value of `--log-format`.
public enum LogFormat: String, Sendable, CaseIterable {
    /// The journal when stderr is connected to it (``JournalStream/stderrIsJournal(environment:)``),
    /// else text on stderr.
    case auto
    /// Always the journal's native protocol, with structured fields.
    case journal
    /// Always readable text on stderr.
    case text

    /// `.journal` or `.text`: what `.auto` means for this process.
    public func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) -> LogFormat {
        switch self {
        case .journal, .text: self
        case .auto: JournalStream.stderrIsJournal(environment: environment) ? .journal : .text
        }
    }
}

/// systemd's `JOURNAL_STREAM` check: is this process's stderr the journal?
///
/// systemd sets `JOURNAL_STREAM=<device>:<inode>` for a service whose stdout or stderr is
/// connected to journald. The variable is inherited by children whose stderr may point elsewhere
/// (a pipe, a terminal), so it only counts when stderr's `fstat(2)` device and inode match.
public enum JournalStream {
    public static func stderrIsJournal(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return matches(environment["JOURNAL_STREAM"], device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Whether a `JOURNAL_STREAM` value names exactly this device and inode. Pure, for tests.
    public static func matches(_ value: String?, device: UInt64, inode: UInt64) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let streamDevice = UInt64(parts[0]), let streamInode = UInt64(parts[1]) else {
            return false
        }
        return streamDevice == device && streamInode == inode
    }
}

/// Bootstraps swift-log for the daemon; call once, from `main` only.
///
/// - Parameters:
///   - format: `--log-format`; `.auto` picks the journal when stderr is the journal.
///   - identifier: `SYSLOG_IDENTIFIER` in the journal, the prefix of text lines.
///   - level: the minimum level logged.
/// - Returns: the format actually used (`.journal` or `.text`), worth logging once at start-up.
@discardableResult
public func bootstrapLogging(format: LogFormat, identifier: String, level: Logger.Level = .info) -> LogFormat {
    let resolved = format.resolved()
    LoggingSystem.bootstrap { label in
        switch resolved {
        case .journal:
            JournalLogHandler(label: label, identifier: identifier, logLevel: level)
        case .auto, .text:
            TextLogHandler(label: label, identifier: identifier, logLevel: level)
        }
    }
    return resolved
}

/// Bootstraps swift-log for the daemon with a level that can change while it runs (see
/// ``LogLevelSwitch``); call once, from `main` only.
@discardableResult
public func bootstrapLogging(format: LogFormat, identifier: String, level: LogLevelSwitch) -> LogFormat {
    let resolved = format.resolved()
    LoggingSystem.bootstrap { label in
        switch resolved {
        case .journal:
            SwitchedLogHandler(JournalLogHandler(label: label, identifier: identifier), levelSwitch: level)
        case .auto, .text:
            SwitchedLogHandler(TextLogHandler(label: label, identifier: identifier), levelSwitch: level)
        }
    }
    return resolved
}
