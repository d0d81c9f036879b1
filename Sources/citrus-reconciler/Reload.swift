import DigitalOcean
import Foundation
import Logging
import ServiceLifecycle
import SystemdSupport
import UnixSignals

/// `systemctl reload` (SIGHUP): re-reads the DigitalOcean token and the log level while the
/// daemon runs; every other setting needs a restart, and the journal says so.
///
/// Where a reload finds them under systemd 252, which does not refresh `$CREDENTIALS_DIRECTORY`
/// on reload (the start-time copy stays):
/// - the token: the unit's `ExecReload=+…` step copies the credential's source file into the
///   service's runtime directory (`$RUNTIME_DIRECTORY/digitalocean-token`, owned by the service's
///   user, 0400) before sending SIGHUP; the daemon reads it from there with the same checks as at
///   start. Without that copy: `--digitalocean-token-file` (re-read) or the start-time sources.
/// - the log level: `--log-level` on the command line wins and cannot change. Otherwise
///   `CITRUS_LOG_LEVEL`, which the same step takes from the freshly read `EnvironmentFile=` into
///   `$RUNTIME_DIRECTORY/log-level` (the main process's environment is fixed at start).
struct Reloader: Sendable {
    /// The token from the sources of an environment (`DigitalOceanOptions.token(environment:)`).
    let readToken: @Sendable ([String: String]) throws(ConfigurationError) -> DigitalOceanToken
    let client: DigitalOceanClient
    let levels: LogLevelSwitch
    /// The level `--log-level` fixed on the command line, if it was given.
    let levelFromFlag: Logger.Level?
    let environment: [String: String]
    let logger: Logger

    /// Re-reads and applies; a bad new value keeps the current one and says why.
    func reload() {
        var reloaded: [String] = []
        var kept: [String] = []

        let (tokenEnvironment, source) = Self.tokenEnvironment(environment)
        do {
            let token = try readToken(tokenEnvironment)
            let changed = client.replaceToken(token)
            reloaded.append("DigitalOcean token from \(source) (\(changed ? "changed" : "unchanged"))")
        } catch {
            logger.error("reload: kept the current DigitalOcean token: \(error)")
            kept.append("DigitalOcean token (the new one could not be read)")
        }

        switch Self.logLevel(flag: levelFromFlag, environment: environment) {
        case .fixed(let level):
            kept.append("log level \(level) (set by --log-level)")
        case .level(let level, let origin):
            let before = levels.level
            levels.level = level
            reloaded.append("log level \(level) from \(origin)\(before == level ? "" : " (was \(before))")")
        case .invalid(let text, let origin):
            logger.error(
                "reload: kept log level \(levels.level): \(origin) \"\(text)\" is not one of trace, debug, info, notice, warning, error, critical"
            )
            kept.append("log level \(levels.level) (the new one is not a level)")
        }

        logger.notice(
            "reloaded: \(reloaded.isEmpty ? "nothing" : reloaded.joined(separator: ", "))\(kept.isEmpty ? "" : "; kept \(kept.joined(separator: ", "))"); any other setting needs a restart (systemctl restart citrus-reconciler)"
        )
    }

    /// The environment to read the token from on reload, and the source's name for the journal:
    /// the copy `ExecReload=` left in `$RUNTIME_DIRECTORY` stands in for `$CREDENTIALS_DIRECTORY`.
    static func tokenEnvironment(
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

    enum LevelChoice: Equatable {
        case fixed(Logger.Level)
        case level(Logger.Level, origin: String)
        case invalid(String, origin: String)
    }

    /// The log level a reload applies: `--log-level` if given (fixed); else the `log-level` file
    /// `ExecReload=` wrote, else `CITRUS_LOG_LEVEL` of the start-time environment; empty or unset
    /// is `info`, as at start.
    static func logLevel(
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
    static func startLevel(flag: Logger.Level?, variable: String?, origin: String = "CITRUS_LOG_LEVEL") -> LevelChoice {
        if let flag { return .fixed(flag) }
        let text = (variable ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return .level(.info, origin: "the default (CITRUS_LOG_LEVEL unset)") }
        guard let level = Logger.Level(rawValue: text.lowercased()) else { return .invalid(text, origin: origin) }
        return .level(level, origin: origin)
    }

    /// `$RUNTIME_DIRECTORY` (systemd's `RuntimeDirectory=`; the first one when several are set).
    static func runtimeDirectory(_ environment: [String: String]) -> String? {
        guard let value = environment["RUNTIME_DIRECTORY"], let first = value.split(separator: ":").first,
            first.hasPrefix("/")
        else {
            return nil
        }
        return String(first)
    }

    /// Whether `--log-level` is on the command line (its option has a default, so the parsed value
    /// cannot tell).
    static func logLevelFlagGiven(_ arguments: [String] = CommandLine.arguments) -> Bool {
        arguments.dropFirst().prefix { $0 != "--" }.contains { $0 == "--log-level" || $0.hasPrefix("--log-level=") }
    }
}

/// Runs ``Reloader/reload()`` on every SIGHUP until the daemon stops.
///
/// Under systemd, the reload is bracketed by `RELOADING=1` and `READY=1`, so `systemctl reload`
/// returns when it is done; before the daemon is first ready, nothing is sent (READY=1 then
/// would claim a readiness it does not have yet).
struct ReloadService: Service {
    let reloader: Reloader
    let notifier: SystemdNotifier
    let isReady: @Sendable () -> Bool

    /// SIGHUP's default action ends the process. Ignore it before anything else, so that a
    /// SIGHUP that comes before this service listens is not fatal either.
    static func ignoreHangupUntilListening() {
        signal(SIGHUP, SIG_IGN)
    }

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            let ready = isReady()
            if ready { notifier.reloading() }
            reloader.reload()
            if ready { notifier.ready() }
        }
    }
}
