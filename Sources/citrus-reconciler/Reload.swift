import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import SystemdSupport

/// `systemctl reload` (SIGHUP): re-reads the DigitalOcean token and the log level while the
/// daemon runs, from where ``ReloadSources`` says (without the copy `ExecReload=` makes, the
/// token comes from `--digitalocean-token-file`, re-read, or the start-time sources); every other
/// setting needs a restart, and the journal says so.
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

        let (tokenEnvironment, source) = ReloadSources.tokenEnvironment(environment)
        do {
            let token = try readToken(tokenEnvironment)
            let changed = client.replaceToken(token)
            reloaded.append("DigitalOcean token from \(source) (\(changed ? "changed" : "unchanged"))")
        } catch {
            logger.error("reload: kept the current DigitalOcean token: \(error)")
            kept.append("DigitalOcean token (the new one could not be read)")
        }

        switch ReloadSources.logLevel(flag: levelFromFlag, environment: environment) {
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

    /// Whether `--log-level` is on the command line (its option has a default, so the parsed value
    /// cannot tell).
    static func logLevelFlagGiven(_ arguments: [String] = CommandLine.arguments) -> Bool {
        arguments.dropFirst().prefix { $0 != "--" }.contains { $0 == "--log-level" || $0.hasPrefix("--log-level=") }
    }
}
