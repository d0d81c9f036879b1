import Foundation

/// How hostile one seed's world is. Rates vary per seed, from calm to vicious, and every draw
/// comes from the world's one generator. Faults stop at `SimulationWorld.quietAt`; after it the
/// world only checks that everything converges.
final class FaultPlan: @unchecked Sendable {
    /// The assumptions the design rests on, stated once. A droplet DigitalOcean accepted shows in
    /// lists and tag lookups within `maxListLag`, and a create is carried out no later than
    /// `maxLateEffect` after the client's deadline; together they stay below the settle period.
    static let maxListLag: TimeInterval = 20
    static let maxLateEffect: TimeInterval = 10

    unowned let world: SimulationWorld
    var createErrorBeforeEffect = 0.0
    var createErrorAfterEffect = 0.0
    var createAnswerLost = 0.0
    var createLate = 0.0
    var readError = 0.0
    var readAnswerLost = 0.0
    var destroyError = 0.0
    /// Up to this much list lag, drawn per droplet: lists by the fleet tag show a droplet after it.
    var listLagMax = 0.0
    /// Lookups by an identity tag lag this much longer (DigitalOcean indexes each tag on its own),
    /// so that both stay within `maxListLag`.
    var identityTagLag = 0.0
    /// A create accepted (202) whose placement then fails: the droplet errors and is gone (404)
    /// before it was ever active.
    var placementFailure = 0.0
    var networkDelayMax = 0.2
    var databaseLatencyMax = 0.02
    var statementFailure = 0.0
    var sessionDeath = 0.0
    var notifyLost = 0.0
    var actionErrored = 0.0
    /// Issue 22's database faults, drawn from the world's second generator (`drawDatabase`).
    var statementSlow = 0.0
    var answerLostAfterCommit = 0.0

    init(world: SimulationWorld) {
        self.world = world
    }

    /// Draws a seed's rates: a quarter of seeds are calm, the rest anywhere up to vicious.
    func draw() {
        let calm = world.random() < 0.25
        func rate(_ max: Double) -> Double { calm ? 0 : world.random() * max }
        createErrorBeforeEffect = rate(0.3)
        createErrorAfterEffect = rate(0.3)
        createAnswerLost = rate(0.3)
        createLate = rate(0.15)
        readError = rate(0.2)
        readAnswerLost = rate(0.1)
        destroyError = rate(0.3)
        listLagMax = world.random() * Self.maxListLag
        identityTagLag = world.random() * (Self.maxListLag - listLagMax)
        placementFailure = rate(0.05)
        networkDelayMax = 0.02 + world.random() * (calm ? 0.1 : 2)
        databaseLatencyMax = 0.001 + world.random() * 0.05
        statementFailure = rate(0.02)
        sessionDeath = rate(0.005)
        notifyLost = rate(0.5)
        actionErrored = rate(0.2)
    }

    /// Statements that wait (a checkpoint, a slow disk, a lock elsewhere) and commits whose
    /// answer is lost; half the seeds have neither.
    func drawDatabase() {
        statementSlow = world.hostileRandom() < 0.5 ? 0 : world.hostileRandom() * 0.01
        answerLostAfterCommit = world.hostileRandom() < 0.5 ? 0 : world.hostileRandom() * 0.005
    }

    private var active: Bool { world.time.now < world.quietAt }

    /// A chance drawn from the second generator, and only when it can happen: a seed without
    /// these faults makes no draw for them.
    private func hostileChance(_ p: Double) -> Bool { p > 0 && active && world.hostileRandom() < p }

    private func chance(_ p: Double) -> Bool { active && world.random() < p }

    func networkDelay() -> TimeInterval { 0.005 + world.random() * networkDelayMax }
    func databaseLatency() -> TimeInterval { 0.0005 + world.random() * databaseLatencyMax }
    func databaseStatementFails() -> Bool { chance(statementFailure) }
    func databaseSessionDies() -> Bool { chance(sessionDeath) }
    func notificationLost() -> Bool { world.random() < notifyLost }
    /// How long a statement waits at the server before it runs, if it is one that waits: mostly
    /// under 15 s, one in twenty up to 90 s (a stuck statement).
    func slowStatement() -> TimeInterval? {
        guard hostileChance(statementSlow) else { return nil }
        return world.hostileRandom() < 0.95 ? 0.2 + world.hostileRandom() * 15 : 15 + world.hostileRandom() * 75
    }
    func databaseAnswerLost() -> Bool { hostileChance(answerLostAfterCommit) }
}
