import DigitalOcean
import DigitalOceanAdapter
import Foundation
import Logging
import ReconcileCore
import Reconciler

/// One run of the daemon in the world: the production loop, reconciler, leadership and rate
/// budget, wired as `citrus-reconciler run` wires them, over simulated ports and a clock that
/// may be off by a skew. A crash discards it; a restart makes a new one.
final class SimulatedProcess: @unchecked Sendable {
    let name: String
    let executor = ProcessExecutor()
    let clock: ProcessClock
    let budget: RateBudget
    let leadership: Leadership<SimulatedSession>
    /// Set once in `init`, as soon as `self` can be handed to the cloud port.
    private(set) var daemon: Daemon!
    var wake: WakeSignal { daemon.wake }
    private var task: Task<Void, Never>?
    unowned let world: SimulationWorld
    /// Since when it has been running without a freeze.
    var runningSince: Date
    /// When it was last frozen (while it is).
    var frozenSince: Date?
    /// When this process sent each request in the last minute (world time).
    private var sends: [Date] = []
    private let perMinute: Int

    init(world: SimulationWorld, name: String, skew: TimeInterval, perMinute: Int) {
        self.world = world
        self.name = name
        self.perMinute = perMinute
        self.runningSince = world.time.now
        clock = ProcessClock(time: world.time, skew: skew)
        budget = RateBudget(configuration: .init(perMinute: perMinute, perHour: 5000), clock: clock)
        let logger = world.logger(for: name)
        let settings = Self.sessionSettings
        leadership = Leadership(clock: clock, logger: logger) { [world, name] in
            try await world.pause(world.faults.databaseLatency())
            let id = try world.database.openSession(owner: name)
            let session = SimulatedSession(id: id, database: world.database)
            if settings != SimulatedDatabase.SessionSettings() { try await session.set(settings) }
            return session
        }
        var configuration = ReconcilerConfiguration()
        configuration.decision.createRequestTimeout = .interval(world.requestTimeout)
        configuration.decision.liveChanges.resize = world.resizeAllowed ? .allow : .off
        configuration.listBudgetPerHour = world.listBudgetPerHour
        configuration.listPagesPerSlice = world.listPagesPerSlice
        configuration.destroyBudget = world.destroyBudget
        if let grace = world.orphanGrace { configuration.decision.orphanPolicy = .delete(grace: .interval(grace)) }
        configuration.decision.droplets = world.dropletDefaults
        configuration.decision.shutdownBeforeDestroy = world.shutdownBeforeDestroy.map { .interval($0) }
        if world.agentBootstrap {
            configuration.enrollment = try? AgentEnrollment(
                engineURL: "wss://hub.example.com/agent",
                template: SimulationWorld.agentTemplate,
                policy: AgentBootstrapPolicy(timeout: .seconds(300), staleAfter: .seconds(120))
            )
        }
        let budget = self.budget
        let leadership = self.leadership
        // The daemon's own client and adapter, over a wire into the world's DigitalOcean.
        var clientConfiguration = DigitalOceanClient.Configuration(
            token: DigitalOceanToken(SimulationWorld.daemonToken),
            baseURL: "https://api.digitalocean.example"
        )
        clientConfiguration.requestTimeout = .interval(world.requestTimeout)
        clientConfiguration.pageSize = world.pageSize
        let client = DigitalOceanClient(
            configuration: clientConfiguration,
            transport: VirtualTransport(world: world, process: self),
            rateBudget: budget,
            clock: clock,
            jitter: { [world] in world.random() },
            logger: logger
        )
        daemon = Daemon.assemble(
            repository: SimulatedRepository(leadership: leadership),
            cloud: DigitalOceanFleet(client: client, clock: clock),
            leadership: leadership,
            configuration: configuration,
            clock: clock,
            jitter: { [world] in world.random() },
            throttled: { [clock] in await budget.isHoldingBack(at: clock.now()) },
            logger: logger
        )
        let service = daemon.service
        task = Task(executorPreference: executor) {
            try? await service.run()
        }
    }

    var isAlive: Bool { !executor.dead }

    /// SIGKILL: nothing of it runs again; the kernel closes its sessions.
    func crash() {
        executor.dead = true
        world.database.killSessions(of: name, why: "process killed")
    }

    /// Ends the process for good at the end of a run (teardown): its jobs may run again, but
    /// every sleep and every port fails at once.
    func stop() {
        executor.dead = false
        executor.frozen = false
        wake.shutdown()
        task?.cancel()
    }

    /// What the daemon sets on each session it opens, as `Leadership.postgres` does with `SET`:
    /// the leader's `lock_timeout` and `statement_timeout`, from the daemon's own configuration.
    static var sessionSettings: SimulatedDatabase.SessionSettings {
        let configuration = Leadership<SimulatedSession>.Configuration()
        return .init(
            lockTimeout: configuration.lockTimeout.timeInterval,
            statementTimeout: configuration.statementTimeout.timeInterval
        )
    }

    /// Called by the transport as a request leaves: that a request that changes something
    /// (`mutating`: a create, an action, a destroy) leaves only with the lease
    /// (`LeadershipChecks`), and the process's own budget (`BudgetChecks`).
    func recordSend(_ what: String, creating identity: UUID?, mutating: Bool) {
        LeadershipChecks.requestSent(what, mutating: mutating, by: self)
        BudgetChecks.requestSent(by: name, sends: &sends, perMinute: perMinute, in: world)
        if let identity { world.lastCreateSentAt[identity] = world.time.now }
        world.requests += 1
        world.trace("\(name) → \(what)")
    }
}
