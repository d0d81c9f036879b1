import ArgumentParser
import CommandLineSupport
import DigitalOceanSimulator
import Foundation
import Logging
import ServiceLifecycle

struct CitrusDoSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-do-sim",
        abstract: "A local DigitalOcean API simulator (v2 droplet endpoints) for development and tests.",
        discussion: """
            Serves GET/POST /v2/droplets, GET/DELETE /v2/droplets/{id} and DELETE /v2/droplets?tag_name= \
            with DigitalOcean's pagination, error bodies, per-token rate limits (ratelimit-* headers, 429 \
            with retry-after for the per-minute limit) and injectable faults. Prints one line on stdout, \
            the URL it listens on, then serves until SIGTERM or SIGINT.

            Introspection and control (no token, loopback only; POST, PUT and PATCH need Content-Type: application/json): GET /_sim/droplets, POST /_sim/droplets \
            (inject), GET|DELETE /_sim/requests, GET /_sim/counts, GET|PUT /_sim/faults, \
            GET|PUT /_sim/rate-limits, DELETE /_sim/rate-limits/usage, GET /_sim/health.

            Agents: a droplet created with user_data that carries AGENT_ID, AGENT_KEY and ENGINE_WS_URL             lines gets a stand-in Citrus Agent once active (cloud-init): it dials ENGINE_WS_URL (ws://,             loopback only; anything else is logged and skipped), says hello, sends heartbeats and             reconnects with backoff (docs/agent-protocol.md). GET /_sim/agents lists them (never the             key); POST /_sim/droplets/{id}/agent with {"heartbeats": false|true} or             {"connected": false|true} controls one; GET|PUT /_sim/agent-settings changes timings.             The same endpoints answer under /admin/.
            """
    )

    @Option(help: "Address to listen on: loopback (127.0.0.1, ::1, localhost) unless --allow-remote.")
    var host = "127.0.0.1"

    @Flag(
        help:
            "Allow a --host other machines can reach. The simulator has no authentication worth the name: use it on a private network only."
    )
    var allowRemote = false

    @Option(help: "Port to listen on; 0 picks a free port (read the URL from stdout).")
    var port = 8765

    @Option(
        name: .customLong("token"),
        help: ArgumentHelp(
            "An accepted bearer token; repeat for several. Default (development only): \(SimulatorConfiguration.developmentToken)",
            valueName: "token"
        )
    )
    var tokens: [String] = []

    @Option(help: "Seconds from create until a droplet is active with addresses.")
    var bootSeconds: Double = 5

    @Option(help: "Seconds a deleted droplet still lists before it disappears.")
    var deleteSeconds: Double = 3

    @Option(help: "Requests per token per sliding minute (DigitalOcean: 250).")
    var ratePerMinute = 250

    @Option(help: "Requests per token per sliding hour (DigitalOcean: 5000).")
    var ratePerHour = 5000

    @Option(help: "Probability (0-1) that a /v2 request gets a 500 with no side effect.")
    var serverErrorProbability: Double = 0

    @Option(help: "Probability (0-1) that a create is performed but the connection closes without an answer.")
    var createResponseLostProbability: Double = 0

    @Option(help: "Probability (0-1) that a create is performed but answered 500.")
    var createServerErrorProbability: Double = 0

    @Option(help: "Seconds a new droplet is missing from list results (GET by id still finds it).")
    var listLagSeconds: Double = 0

    @Option(help: "Seconds of latency added to every /v2 response.")
    var latencySeconds: Double = 0

    @Option(help: "Probability (0-1) that an accepted droplet vanishes before it becomes active.")
    var vanishProbability: Double = 0

    @Option(help: "Seconds from a droplet becoming active until cloud-init has its agent connect.")
    var agentBootSeconds: Double = 1

    @Option(help: "Seconds between an agent's heartbeats.")
    var agentHeartbeatSeconds: Double = 10

    @Option(help: "First reconnect delay of an agent, in seconds; it doubles up to --agent-reconnect-max-seconds.")
    var agentReconnectInitialSeconds: Double = 1

    @Option(help: "Longest reconnect delay of an agent, in seconds.")
    var agentReconnectMaxSeconds: Double = 10

    @Option(help: "Probability (0-1), per droplet, that its agent never connects.")
    var agentNeverConnectProbability: Double = 0

    @Option(help: "Probability (0-1), per droplet, that its agent presents a wrong key.")
    var agentWrongKeyProbability: Double = 0

    @Option(help: "Probability (0-1), per droplet, that its agent connects --agent-late-seconds late.")
    var agentLateProbability: Double = 0

    @Option(help: "Extra seconds before a late agent connects.")
    var agentLateSeconds: Double = 0

    @Flag(name: .customLong("no-agents"), help: "Do not start agents for droplets (user_data is still accepted).")
    var noAgents = false

    @Option(help: "Seed for ids, addresses, request ids and fault draws, for repeatable runs.")
    var seed: UInt64?

    @Option(help: "Directory to keep droplets in (JSON) across restarts.")
    var stateDir: String?

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        for (name, value) in [
            ("--server-error-probability", serverErrorProbability),
            ("--create-response-lost-probability", createResponseLostProbability),
            ("--create-server-error-probability", createServerErrorProbability),
            ("--vanish-probability", vanishProbability),
            ("--agent-never-connect-probability", agentNeverConnectProbability),
            ("--agent-wrong-key-probability", agentWrongKeyProbability),
            ("--agent-late-probability", agentLateProbability),
        ] where !(0...1).contains(value) {
            throw ValidationError("\(name) must be between 0 and 1")
        }
        for (name, value) in [
            ("--boot-seconds", bootSeconds), ("--delete-seconds", deleteSeconds),
            ("--list-lag-seconds", listLagSeconds), ("--latency-seconds", latencySeconds),
            ("--agent-boot-seconds", agentBootSeconds), ("--agent-late-seconds", agentLateSeconds),
        ] where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(name) must be 0 or more")
        }
        for (name, value) in [
            ("--agent-heartbeat-seconds", agentHeartbeatSeconds),
            ("--agent-reconnect-initial-seconds", agentReconnectInitialSeconds),
            ("--agent-reconnect-max-seconds", agentReconnectMaxSeconds),
        ] where !(value >= 0.01 && value.isFinite) {
            throw ValidationError("\(name) must be at least 0.01")
        }
        guard ratePerMinute >= 0, ratePerHour >= 0 else { throw ValidationError("rate limits must be 0 or more") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
    }

    /// Hosts the simulator binds to without --allow-remote.
    static func isLoopback(_ host: String) -> Bool {
        let lowered = host.lowercased()
        if ["localhost", "::1", "[::1]"].contains(lowered) { return true }
        let octets = lowered.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    func run() async throws {
        guard allowRemote || Self.isLoopback(host) else {
            throw ConfigurationExit.report(
                "--host \(host) is not a loopback address; its control API (/_sim) has no authentication. Give --allow-remote to listen there anyway",
                program: "citrus-do-sim"
            )
        }
        bootstrapStandardErrorLogging(level: logLevel)
        let logger = Logger(label: "citrus-do-sim")

        var configuration = SimulatorConfiguration()
        if !tokens.isEmpty { configuration.tokens = Set(tokens) }
        configuration.bootTime = .milliseconds(Int64(bootSeconds * 1000))
        configuration.deleteTime = .milliseconds(Int64(deleteSeconds * 1000))
        configuration.rateLimits = SimulatorRateLimits(perMinute: ratePerMinute, perHour: ratePerHour)
        configuration.faults.serverErrorProbability = serverErrorProbability
        configuration.faults.createResponseLostProbability = createResponseLostProbability
        configuration.faults.createServerErrorProbability = createServerErrorProbability
        configuration.faults.listLagSeconds = listLagSeconds
        configuration.faults.latencySeconds = latencySeconds
        configuration.faults.vanishProbability = vanishProbability
        configuration.faults.agentNeverConnectProbability = agentNeverConnectProbability
        configuration.faults.agentWrongKeyProbability = agentWrongKeyProbability
        configuration.faults.agentLateProbability = agentLateProbability
        configuration.faults.agentLateSeconds = agentLateSeconds
        configuration.agentTiming = SimulatorAgentTiming(
            bootDelaySeconds: agentBootSeconds,
            heartbeatIntervalSeconds: agentHeartbeatSeconds,
            reconnectInitialSeconds: agentReconnectInitialSeconds,
            reconnectMaximumSeconds: max(agentReconnectMaxSeconds, agentReconnectInitialSeconds)
        )
        configuration.seed = seed
        configuration.stateDirectory = stateDir

        let simulator = try SimulatedDigitalOcean(configuration: configuration)
        let server = try await SimulatorServer.bind(
            host: host,
            port: port,
            simulator: simulator,
            agents: !noAgents,
            logger: logger
        )
        // The one line on stdout: scripts read the port from it when using --port 0.
        FileHandle.standardOutput.write(Data((server.baseURL + "\n").utf8))

        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

@main
enum Main {
    static func main() async { await CitrusDoSim.mainExitingOnBadConfiguration() }
}
