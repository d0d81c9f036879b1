import ArgumentParser
import DigitalOceanSimulator
import Foundation
import Logging
import ServiceLifecycle

@main
struct CitrusDoSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-do-sim",
        abstract: "A local DigitalOcean API simulator (v2 droplet endpoints) for development and tests.",
        discussion: """
            Serves GET/POST /v2/droplets, GET/DELETE /v2/droplets/{id} and DELETE /v2/droplets?tag_name= \
            with DigitalOcean's pagination, error bodies, per-token rate limits (ratelimit-* headers, 429 \
            with retry-after for the per-minute limit) and injectable faults. Prints one line on stdout, \
            the URL it listens on, then serves until SIGTERM or SIGINT.

            Introspection and control (no token, loopback only): GET /_sim/droplets, POST /_sim/droplets \
            (inject), GET|DELETE /_sim/requests, GET /_sim/counts, GET|PUT /_sim/faults, \
            GET|PUT /_sim/rate-limits, DELETE /_sim/rate-limits/usage, GET /_sim/health.
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

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
        ] where !(0...1).contains(value) {
            throw ValidationError("\(name) must be between 0 and 1")
        }
        for (name, value) in [
            ("--boot-seconds", bootSeconds), ("--delete-seconds", deleteSeconds),
            ("--list-lag-seconds", listLagSeconds), ("--latency-seconds", latencySeconds),
        ] where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(name) must be 0 or more")
        }
        guard ratePerMinute >= 0, ratePerHour >= 0 else { throw ValidationError("rate limits must be 0 or more") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
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
        configuration.seed = seed
        configuration.stateDirectory = stateDir

        let simulator = try SimulatedDigitalOcean(configuration: configuration)
        let server = try await SimulatorServer.bind(host: host, port: port, simulator: simulator, logger: logger)
        // The one line on stdout: scripts read the port from it when using --port 0.
        FileHandle.standardOutput.write(Data((server.baseURL + "\n").utf8))

        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
