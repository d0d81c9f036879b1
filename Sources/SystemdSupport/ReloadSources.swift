#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import TerminalText

/// Where a reload finds the token and the log level under systemd 252, which does not refresh
/// `$CREDENTIALS_DIRECTORY` on reload (the start-time copy stays):
/// - the token: the unit's `ExecReload=+…` step copies the credential's source file into the
///   service's runtime directory (`$RUNTIME_DIRECTORY/digitalocean-token`, owned by the service's
///   user, 0400) before sending SIGHUP; the daemon reads it from there with the same checks as at
///   start. Without that copy: the start-time sources.
/// - the log level: `--log-level` on the command line wins and cannot change. Otherwise
///   `CITRUS_LOG_LEVEL`, which the same step takes from the freshly read `EnvironmentFile=` into
///   `$RUNTIME_DIRECTORY/log-level` (the main process's environment is fixed at start).
public enum ReloadSources {
    /// The log level to apply, and where it came from (for the journal).
    public enum LevelChoice: Equatable, Sendable {
        /// `--log-level` fixed it on the command line.
        case fixed(Logger.Level)
        case level(Logger.Level, origin: String)
        /// `text` (from `origin`) is not a level.
        case invalid(String, origin: String)
    }

    /// The environment to read the token from on reload, and the source's name for the journal:
    /// the copy `ExecReload=` left in `$RUNTIME_DIRECTORY` stands in for `$CREDENTIALS_DIRECTORY`.
    public static func tokenEnvironment(
        _ environment: [String: String],
        fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
    ) -> (environment: [String: String], source: String) {
        var environment = environment
        if let runtime = runtimeDirectory(environment), fileExists(runtime + "/digitalocean-token") {
            environment["CREDENTIALS_DIRECTORY"] = runtime
            return (environment, "the credential file refreshed by ExecReload= (\(runtime)/digitalocean-token)")
        }
        return (environment, "the sources read at start")
    }

    /// The log level a reload applies: `--log-level` if given (fixed); else the `log-level` file
    /// `ExecReload=` wrote, else `CITRUS_LOG_LEVEL` of the start-time environment; empty or unset
    /// is `info`, as at start.
    public static func logLevel(
        flag: Logger.Level?,
        environment: [String: String],
        readFile: (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }
    ) -> LevelChoice {
        if let flag { return .fixed(flag) }
        let (text, origin): (String?, String) =
            if let runtime = runtimeDirectory(environment), let file = readFile(runtime + "/log-level") {
                (file, "CITRUS_LOG_LEVEL (the environment file, read by ExecReload=)")
            } else {
                (environment["CITRUS_LOG_LEVEL"], "CITRUS_LOG_LEVEL")
            }
        return startLevel(flag: nil, variable: text, origin: origin)
    }

    /// The level at start: `--log-level` if given, else `CITRUS_LOG_LEVEL`, else `info`.
    public static func startLevel(
        flag: Logger.Level?,
        variable: String?,
        origin: String = "CITRUS_LOG_LEVEL"
    ) -> LevelChoice {
        if let flag { return .fixed(flag) }
        let text = (variable ?? "").trimmingWhitespace()
        if text.isEmpty { return .level(.info, origin: "the default (CITRUS_LOG_LEVEL unset)") }
        guard let level = Logger.Level(rawValue: text.lowercased()) else { return .invalid(text, origin: origin) }
        return .level(level, origin: origin)
    }

    /// `$RUNTIME_DIRECTORY` (systemd's `RuntimeDirectory=`; the first one when several are set).
    public static func runtimeDirectory(_ environment: [String: String]) -> String? {
        guard let value = environment["RUNTIME_DIRECTORY"], let first = value.split(separator: ":").first,
            first.hasPrefix("/")
        else {
            return nil
        }
        return String(first)
    }
}
