import DigitalOceanSimulator
import Logging

/// Runs the DigitalOcean simulator in-process on 127.0.0.1 with an ephemeral port for the length of
/// a test body, then shuts it down (even if the body throws). Droplets created with agent values in
/// `user_data` get stand-in agents (``SimulatedAgents``) unless `agents: false`; they stop with it.
public enum SimulatorHarness {
    /// The token the harness configures unless the configuration names others.
    public static let token = "dop_v1_test_token_0123456789abcdef"

    public struct Running: Sendable {
        public let simulator: SimulatedDigitalOcean
        public let server: SimulatorServer
        public let token: String
        public var baseURL: String { server.baseURL }
        public var port: Int { server.port }
        /// The stand-in agents, when running.
        public var agents: SimulatedAgents? { server.agents }
    }

    /// A configuration for tests: fast lifecycle (agents boot 0.2 s after active, beat every second,
    /// retry from 0.2 s up to 2 s), the harness token, repeatable randomness.
    public static func testConfiguration(seed: UInt64 = 42) -> SimulatorConfiguration {
        var configuration = SimulatorConfiguration()
        configuration.tokens = [token]
        configuration.bootTime = .milliseconds(300)
        configuration.deleteTime = .milliseconds(300)
        configuration.seed = seed
        configuration.agentBootDelay = .milliseconds(200)
        configuration.agentHeartbeatInterval = .seconds(1)
        configuration.agentReconnectInitialDelay = .milliseconds(200)
        configuration.agentReconnectMaximumDelay = .seconds(2)
        return configuration
    }

    public static func withSimulator<T: Sendable>(
        configuration: SimulatorConfiguration = testConfiguration(),
        agents: Bool = true,
        logger: Logger = Logger(label: "simulator-harness", factory: { _ in SwiftLogNoOpLogHandler() }),
        _ body: (Running) async throws -> T
    ) async throws -> T {
        let simulator = try SimulatedDigitalOcean(configuration: configuration)
        let server = try await SimulatorServer.bind(
            host: "127.0.0.1",
            port: 0,
            simulator: simulator,
            agents: agents,
            logger: logger
        )
        let running = Running(simulator: simulator, server: server, token: configuration.tokens.sorted().first ?? token)
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { try await server.run() }
            do {
                let result = try await body(running)
                group.cancelAll()
                try? await group.waitForAll()
                return result
            } catch {
                group.cancelAll()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}
