import Foundation
import DigitalOceanModel
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Timekeeping

/// Plays cloud-init for the simulator: once a droplet created with agent values in its `user_data`
/// is active, starts a stand-in Citrus Agent that dials `ENGINE_WS_URL` (loopback only) and speaks
/// docs/agent-protocol.md. One task per droplet; it ends when the droplet is deleted or gone, and
/// all end when this service is cancelled or shut down gracefully.
///
/// Kept apart from ``SimulatedDigitalOcean``, which stays transport-free: this polls it.
/// ``SimulatorServer`` runs one beside the HTTP server unless told not to.
public final class SimulatedAgents: Service, Sendable {
    public let simulator: SimulatedDigitalOcean
    /// How often new active droplets are looked for.
    public let pollInterval: Duration
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup

    public init(
        simulator: SimulatedDigitalOcean,
        pollInterval: Duration = .milliseconds(200),
        logger: Logger = Logger(label: "citrus-do-sim.agents"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.simulator = simulator
        self.pollInterval = pollInterval
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                // Ids only grow and a droplet's agent runs at most once: it ends with its droplet.
                var started: Set<Int64> = []
                while !Task.isCancelled {
                    for id in self.simulator.agentDropletIDs() where !started.contains(id) {
                        started.insert(id)
                        let agent = SimulatedAgent(
                            dropletID: id,
                            simulator: self.simulator,
                            logger: self.logger,
                            eventLoopGroup: self.eventLoopGroup
                        )
                        group.addTask { await agent.run() }
                    }
                    try? await Task.sleep(for: self.pollInterval)
                }
                group.cancelAll()
            }
        }
    }
}

/// One droplet's agent: waits for cloud-init, then connects, says hello, beats, and reconnects with
/// backoff until its droplet goes away.
struct SimulatedAgent: Sendable {
    let dropletID: Int64
    let simulator: SimulatedDigitalOcean
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    /// How often a waiting or connected agent looks at its droplet and its admin controls.
    static let checkInterval: Duration = .milliseconds(50)

    private var metadata: Logger.Metadata { ["droplet_id": "\(dropletID)"] }

    func run() async {
        defer { simulator.updateAgentStatus(dropletID: dropletID) { $0.state = .stopped } }
        guard let first = simulator.agentAssignment(dropletID: dropletID) else { return }
        let start = first.activeAt.addingTimeInterval(first.timing.bootDelaySeconds + first.lateBy)
        guard await waitWhilePresent(until: start) else { return }

        if first.neverConnects {
            logger.info("agent fault: it never connects", metadata: metadata)
            _ = await waitWhilePresent { _ in true }
            return
        }
        let endpoint: AgentEndpoint
        switch AgentEndpoint.parse(first.engineURL) {
        case .failure(let error):
            skip("ENGINE_WS_URL is \(error); the agent does not dial")
            return
        case .success(let parsed) where !parsed.isLoopback:
            skip("\(parsed.host) is not loopback; the simulator's agents only dial 127.0.0.1, ::1 or localhost")
            return
        case .success(let parsed) where parsed.secure:
            skip("the stand-in agent speaks ws:// only, not wss://")
            return
        case .success(let parsed):
            endpoint = parsed
        }

        // Failed attempts since the last welcome: the reconnect delay doubles with each, without
        // jitter, from the initial delay up to the maximum (Timekeeping's backoff, its ceiling).
        var failures = 0
        // The hub's credential, once a welcome gave one: the bootstrap key is single-use.
        var credential: String?
        while let assignment = simulator.agentAssignment(dropletID: dropletID), !Task.isCancelled {
            guard assignment.connectEnabled else {
                simulator.updateAgentStatus(dropletID: dropletID) { $0.state = .stopped }
                guard await waitWhilePresent(while: { !$0.connectEnabled }) else { return }
                failures = 0
                continue
            }
            simulator.updateAgentStatus(dropletID: dropletID) { $0.state = .connecting }
            var meta = metadata
            meta["agent_id"] = "\(assignment.agentID)"
            meta["engine"] = "\(endpoint)"
            logger.info("agent connecting", metadata: meta)
            let outcome = await AgentConnection(
                endpoint: endpoint,
                dropletID: dropletID,
                simulator: simulator,
                logger: logger,
                eventLoopGroup: eventLoopGroup
            ).run(agentID: assignment.agentID, key: assignment.presentedKey, credential: credential)
            switch outcome {
            case .welcomedThenClosed(let given):
                if let given { credential = given }
                logger.info("agent connection ended", metadata: meta)
                failures = 0
                simulator.updateAgentStatus(dropletID: dropletID) { $0.state = .connecting }
            case .refused(let reason):
                // A credential the hub no longer knows (a database restored from before it) is
                // dropped: the next hello tries the key, which works if the daemon has not cleared
                // it. Other refusals (an operator's drop, the hub's database down) keep it.
                if reason == "wrong credential" { credential = nil }
                meta["reason"] = "\(reason)"
                logger.notice("agent refused by the hub", metadata: meta)
                simulator.updateAgentStatus(dropletID: dropletID) {
                    $0.state = .refused
                    $0.refusals += 1
                }
            case .failed(let reason):
                meta["error"] = "\(reason)"
                logger.info("agent connection failed", metadata: meta)
                simulator.updateAgentStatus(dropletID: dropletID) {
                    $0.state = .connecting
                    $0.note = reason
                }
            case .stopped:
                continue  // Disconnected through the admin API, or the droplet is going: no backoff.
            }
            failures += 1
            let delay = Backoff(
                initial: .interval(assignment.timing.reconnectInitialSeconds),
                maximum: .interval(assignment.timing.reconnectMaximumSeconds)
            ).ceiling(failures: failures)
            guard await waitWhilePresent(until: simulator.clock.now().adding(delay)) else { return }
        }
    }

    private func skip(_ reason: String) {
        logger.warning("agent not started", metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
        simulator.updateAgentStatus(dropletID: dropletID) {
            $0.state = .stopped
            $0.note = reason
        }
    }

    /// Waits until `deadline`; false if the droplet went away (or the task was cancelled) first.
    private func waitWhilePresent(until deadline: Date) async -> Bool {
        await waitWhilePresent { _ in simulator.clock.now() < deadline }
    }

    /// Waits while `condition` holds; false if the droplet went away (or the task was cancelled).
    private func waitWhilePresent(while condition: (AgentAssignment) -> Bool) async -> Bool {
        while !Task.isCancelled {
            guard let assignment = simulator.agentAssignment(dropletID: dropletID) else { return false }
            if !condition(assignment) { return true }
            try? await Task.sleep(for: Self.checkInterval)
        }
        return false
    }
}
