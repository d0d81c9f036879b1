import ArgumentParser
import CommandLineSupport
import EngineHubSimulator
import Foundation
import Logging
import ServiceLifecycle

/// Options, then the hub as a service in a `ServiceGroup`; everything else lives in the library.
struct CitrusEngineSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-engine-sim",
        abstract: "A local stand-in for the Engine Hub: authenticates Citrus agents against the agents table.",
        discussion: """
            Agents connect over WebSocket to ws://HOST:PORT/agent and speak docs/agent-protocol.md: the hub \
            compares the SHA-256 of each presented key with agents.key_sha256 and keeps agents.connected_at \
            and agents.last_seen_at. On start it prints one line on stdout, \
            "citrus-engine-sim listening on ws://HOST:PORT/agent", then serves until SIGTERM or SIGINT.

            Plain HTTP on the same port (no authentication; loopback only unless --allow-remote): \
            GET /healthz, GET /admin/agents, GET /admin/stats, \
            POST /admin/agents/<uuid>/drop with an optional body {"seconds": S} (close the agent's \
            connections and refuse its hellos for S seconds).

            Exit status: 0 after a clean stop; 78 for bad configuration (one line says what to fix); 1 otherwise.
            """
    )

    @Option(help: "Address to listen on (loopback unless --allow-remote).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free port (read the URL from stdout).")
    var port = 8766

    @Option(
        help: ArgumentHelp(
            "Postgres connection holding the agents table: a libpq conninfo string or URI (env CITRUS_DATABASE_URL). Unset: libpq's defaults and PG* variables.",
            valueName: "conninfo"
        )
    )
    var databaseURL: String?

    @Flag(
        help:
            "Allow listening on an address that is not loopback (the stand-in has no TLS and no admin authentication)."
    )
    var allowRemote = false

    @Option(help: "Seconds a new connection has to send its hello (protocol: 10).")
    var helloTimeoutSeconds: Double = 10

    @Option(
        help: "Seconds of silence after which an authenticated connection is closed (3 × the 30 s heartbeat contract)."
    )
    var idleLimitSeconds: Double = 90

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        bootstrapStandardErrorLogging(level: logLevel)
        let logger = Logger(label: "citrus-engine-sim")

        var configuration = EngineHub.Configuration(host: host, port: port)
        configuration.databaseURL = databaseURL ?? ProcessInfo.processInfo.environment["CITRUS_DATABASE_URL"]
        configuration.allowRemote = allowRemote
        configuration.helloTimeout = try Self.duration("--hello-timeout-seconds", helloTimeoutSeconds)
        configuration.idleLimit = try Self.duration("--idle-limit-seconds", idleLimitSeconds)

        let hub: EngineHub
        do {
            hub = try await EngineHub.bind(configuration: configuration, logger: logger)
        } catch  where error.isConfigurationError {
            throw Self.configurationError(error.message)
        } catch {
            FileHandle.standardError.write(Data("citrus-engine-sim: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
        // The one line on stdout: scripts read the port from it when using --port 0.
        FileHandle.standardOutput.write(Data("citrus-engine-sim listening on \(hub.url)\n".utf8))

        let group = ServiceGroup(
            configuration: .init(services: [hub], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    private static func duration(_ flag: String, _ seconds: Double) throws -> Duration {
        guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
            throw configurationError("\(flag) must be a number of seconds above 0 and at most 86400")
        }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// Prints one line on stderr and returns exit 78 (EX_CONFIG) to throw.
    static func configurationError(_ message: String) -> ExitCode {
        ConfigurationExit.report(message, program: "citrus-engine-sim")
    }
}

@main
enum Main {
    static func main() async { await CitrusEngineSim.mainExitingOnBadConfiguration() }
}
