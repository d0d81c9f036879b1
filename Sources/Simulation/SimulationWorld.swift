import DigitalOceanModel
import Foundation
import Logging
import ReconcileCore
import Reconciler
import Timekeeping

/// One seeded world: Postgres, DigitalOcean, the operators and one to three replicas of the
/// daemon, all in virtual time on one thread. The seed draws the world's hostility, its schedule
/// of events, every fault and every interleaving; the same seed gives the same trace, byte for
/// byte, in the same build configuration (the optimiser changes where tasks suspend, and so the
/// interleavings a seed picks from: a seed found in release replays in release).
///
/// Why a controlled executor rather than a sans-I/O rewrite: the code under test is the code that
/// ships, unchanged (`ReconcileService`, `FleetReconciler`, `Leadership`, `RateBudget`, the
/// decision and the create-outcome rules), including the act layer's ordering of intent, permit,
/// send and record, where the duplicates on main came from. Only the ports (the database, the
/// API, time) are simulated, and each suspends its caller until the world says what happens.
public final class SimulationWorld: @unchecked Sendable {
    public struct Outcome: Sendable {
        public var seed: UInt64
        public var violations: [String]
        /// The trace (only when asked for; otherwise its hash).
        public var trace: [String]
        public var traceHash: UInt64
        public var steps: Int
        public var virtualSeconds: Double
        public var requests: Int
        public var replicas: Int
        public var rows: Int
        /// Seconds from a leader's freeze to another replica taking the lock, for each freeze of a
        /// leader that another replica could replace.
        public var takeovers: [Double]
        /// Droplets the daemon created for a row whose droplet had vanished (destroyed out of
        /// band): what the design allows, counted rather than judged.
        public var recreatedAfterVanish: Int
        /// Droplets the daemon created for a row after one of its droplets' placement failed (a
        /// 404 after the 202): what issue 25 asks for.
        public var placedAgain: Int
        /// Second droplets for rows whose commits a failover to an asynchronous standby lost: the
        /// promise does not hold there (see `SimulationWorld.promiseVoided`), so they are counted.
        public var duplicatesAfterLossyFailover: Int
        /// What the seed drew for the world's operator: replication, orphans, agent bootstrap.
        public var setting: String
        /// Times a replica braked destroys (`destroys_braked` entries): the brake at work, counted.
        public var destroysBraked: Int = 0
        /// Destroys the budget counts that were sent while an operator's allowance was in force.
        public var destroysAllowed: Int = 0
    }

    let time = VirtualTime(origin: Date(timeIntervalSince1970: 1_800_000_000))
    private var generator: SeededGenerator
    /// A second generator for what the world learned to do in issue 22 (row locks, slow statements,
    /// failovers, operators acting during creates, the seed's settings): drawn apart, so that a
    /// seed where none of it happens makes the same draws from `generator` as before it.
    private var hostileGenerator: SeededGenerator
    /// A third, for the droplet specification (issue 25): tags and backups changed on live rows,
    /// the seed's keys, VPCs, project and graceful shutdowns.
    private var specificationGenerator: SeededGenerator
    /// A fourth, for the destroy brake (issue 25): its budget, mass deletions and the
    /// operator's allowances; a seed where none of it happens draws as it did before.
    private var brakeGenerator: SeededGenerator
    let seed: UInt64
    private(set) var database: SimulatedDatabase!
    /// The one DigitalOcean model, `citrus-do-sim`'s (see `SimulationWorld+DigitalOcean`).
    var digitalOcean: SimulatedDigitalOcean!
    /// `per_page` of the replicas' lists.
    var pageSize = 200
    /// Droplets a daemon sent a power_off to since it last powered them on: the only ones it may
    /// power on (the simulation runs with `--powered-off report`).
    var poweredOffByDaemon: Set<Int64> = []
    /// Droplets, by identity, whose placement failed after DigitalOcean accepted their create.
    var placementFailed: [UUID: Set<Int64>] = [:]
    private(set) var faults: FaultPlan!
    /// The last replica of each slot (replaced on restart) and every process ever started.
    var slots: [SimulatedProcess?] = []
    var everyProcess: [SimulatedProcess] = []
    var incarnations: [Int] = []
    var skews: [TimeInterval] = []
    var budgetPerMinute = 250
    /// Faults and operator events stop here; from then on the world only watches convergence.
    var quietAt: Date
    let requestTimeout: TimeInterval = 30
    /// How long after `quietAt` every row must have converged: 900 s, or what the seed's fleet
    /// and list parameters make the daemon's documented staleness, if longer. A droplet destroyed
    /// by hand just after its page of a full list was read is seen by the next full list only.
    /// After the faults the daemon may first spend the rate budget on the backlog (a lookup, a
    /// create and reads a row), then end the list in progress (begun before the destroy) and read
    /// one more, an interval after the first began at the soonest. With pages of two, one page a
    /// slice, 60 requests a minute and 95 rows, that is over 900 s (seed 14641). Rows are only
    /// inserted before `quietAt`, so the bound is fixed from then on.
    var convergenceBound: TimeInterval {
        let rows = database.rows.count
        let pages = max(1, (rows + pageSize - 1) / pageSize)
        let slices = (pages + listPagesPerSlice - 1) / listPagesPerSlice
        let list = Double(slices) * ReconcilerConfiguration().listSliceInterval.timeInterval
        let interval = max(60, Double(pages) * 3600 / Double(listBudgetPerHour))
        let backlog = Double(3 * rows) * 60 / Double(budgetPerMinute)
        return max(900, backlog + 2 * list + interval + 300)
    }

    private let verbose: Bool
    private var traceLines: [String] = []
    private var traceHash: UInt64 = 0xcbf2_9ce4_8422_2325
    private(set) var violations: [String] = []
    var steps = 0
    var requests = 0
    var lastCreateSentAt: [UUID: Date] = [:]
    var createsTakenEffect: [UUID: Int] = [:]
    var labels: [UUID: String] = [:]
    /// Rows something out of band happened to (a droplet destroyed at DigitalOcean, a restore):
    /// they may end failed; every other valid row must end active or deleted.
    var disturbed: Set<UUID> = []
    var invalid: Set<UUID> = []
    /// Whether this seed's replicas run with `--resize allow` (see `SimulationWorld+LiveChanges`).
    var resizeAllowed: Bool { seed % 2 == 0 }
    /// What full lists may spend an hour, and the pages read per pass: with pages of two, a fleet
    /// of 60 is listed every 7 minutes at the least, one page a pass, so that most passes decide
    /// on a view minutes old, and a full list still ends inside the convergence bound after the
    /// faults stop. Drawn from the seed, not the generator, so that earlier seeds replay.
    var listBudgetPerHour: Int { [750, 400, 250][Int(seed / 2 % 3)] }
    var listPagesPerSlice: Int { [25, 1, 3][Int(seed / 6 % 3)] }
    /// Rows whose droplet a person changed at DigitalOcean (renamed, powered off).
    var changedByHand: Set<UUID> = []
    /// Rows deleted with SQL and inserted again: their records of changes in flight are gone.
    var reinserted: Set<UUID> = []
    var snapshot: (at: Date, tables: SimulatedDatabase.Tables)?
    /// The seed's settings (drawn in `drawSetting`): `--orphans delete` with this grace, agent
    /// bootstrap, and how the operator replicates the database.
    var orphanGrace: TimeInterval?
    /// The replicas' destroy budget (`--destroy-budget-*`): small in the seeds that test the
    /// brake, the default elsewhere. The first send of each destroy the budget counts (rows'
    /// deletions and orphans; not duplicates), for `BrakeChecks`.
    var destroyBudget = DestroyBudget()
    var budgetedDestroysSent: [Int64: Date] = [:]
    var destroysSentWhileAllowed = 0
    var agentBootstrap = false
    /// What every droplet is made with, and the graceful shutdown before a destroy (see
    /// `SimulationWorld+Specification`).
    var dropletDefaults = DropletDefaults()
    var shutdownBeforeDestroy: TimeInterval?
    /// When each identity last stopped having a live row (deleted with SQL, marked `deleted`,
    /// taken back by a restore): an orphan's grace counts from here.
    var rowGoneAt: [UUID: Date] = [:]
    /// Rows that went while their deletion was requested: their droplet is no orphan to judge.
    var goneAskingDeletion: Set<UUID> = []
    /// Rows a restore took back (present when it came, or in its backup).
    var restored: Set<UUID> = []
    /// Identities whose droplet the world destroyed out of band: a create for one afterwards is
    /// counted in `recreatedAfterVanish`.
    var vanished: Set<UUID> = []
    var recreatedAfterVanish = 0
    var placedAgain = 0
    /// Rows whose commits a failover to an asynchronous standby lost. The exactly-once promise
    /// needs synchronous replication (design rule 7; the README says so): for these rows a second
    /// droplet is counted in `duplicatesAfterLossyFailover`, not judged, and they may end failed.
    /// Nothing else is relaxed, and nothing at all for rows the lost window did not touch.
    var promiseVoided: Set<UUID> = []
    var duplicatesAfterLossyFailover = 0
    /// When an operator withdrew each row's deletion request (cleared `delete_requested_at`).
    var deletionWithdrawnAt: [UUID: Date] = [:]
    /// Since when each replica has held leadership without being able to act (its lease lapsed
    /// while its session stays busy): see `LeadershipChecks.leadersCanAct`.
    var leaderStuckSince: [String: Date] = [:]
    var orphanedLockSince: Date?
    /// When the process holding the lock was frozen, while it still holds it.
    var leaderFrozenAt: Date?
    private(set) var takeovers: [Double] = []
    var finished = false
    /// Applied to the model's faults once the seed has drawn them (see `run`).
    var adjustFaults: (@Sendable (inout SimulatorFaults) -> Void)?
    var keepGoing = false
    /// Ids the daemon made up, by the name the trace gives them (see `stableIDs`).
    private var madeUpIDs: [String: String] = [:]

    init(seed: UInt64, verbose: Bool) {
        self.seed = seed
        self.verbose = verbose
        generator = SeededGenerator(seed: seed)
        hostileGenerator = SeededGenerator(seed: seed ^ 0x6973_7375_6532_3232)
        specificationGenerator = SeededGenerator(seed: seed ^ 0x7370_6563_2d32_3235)
        brakeGenerator = SeededGenerator(seed: seed ^ 0x6272_616b_6573_3235)
        quietAt = time.origin
        faults = FaultPlan(world: self)
        database = SimulatedDatabase(world: self, silenceLimit: 15)
        digitalOcean = makeDigitalOcean(perMinute: 250)
    }

    /// Runs one seed to the end and tears everything down. `keepGoing`: on past the first
    /// violation, to see every kind of failure a seed finds (the run after it is no replay of
    /// anything the daemon would do once fixed; only its first violation is).
    ///
    /// `faults`: a change to the DigitalOcean model's faults the seed drew, for tests that aim one.
    public static func run(
        seed: UInt64,
        verbose: Bool = false,
        keepGoing: Bool = false,
        faults: (@Sendable (inout SimulatorFaults) -> Void)? = nil
    ) -> Outcome {
        let world = SimulationWorld(seed: seed, verbose: verbose)
        // The production code's own checks (`Invariants`) report here, in every build.
        return Invariants.reporting(to: { [unowned world] in world.violation($0) }) {
            run(world, keepGoing: keepGoing, faults: faults)
        }
    }

    private static func run(
        _ world: SimulationWorld,
        keepGoing: Bool,
        faults: (@Sendable (inout SimulatorFaults) -> Void)?
    ) -> Outcome {
        world.keepGoing = keepGoing
        world.adjustFaults = faults
        world.setUp()
        // The bound depends on the rows inserted, which stop at `quietAt`.
        world.drive(until: world.quietAt)
        // A restore's (or failover's) downtime begun before the quiet point is a fault that has
        // not stopped yet: the bound runs from the database's return (seed 130172 lost 173 s of it).
        let quiet = max(world.quietAt, world.database.unavailableUntil ?? world.quietAt)
        world.drive(until: quiet.addingTimeInterval(world.convergenceBound))
        if world.violations.isEmpty || keepGoing { ConvergenceChecks.converged(final: true, in: world) }
        let outcome = Outcome(
            seed: world.seed,
            violations: world.violations,
            trace: world.traceLines,
            traceHash: world.traceHash,
            steps: world.steps,
            virtualSeconds: world.time.now.timeIntervalSince(world.time.origin),
            requests: world.requests,
            replicas: world.slots.count,
            rows: world.database.rows.count,
            takeovers: world.takeovers,
            recreatedAfterVanish: world.recreatedAfterVanish,
            placedAgain: world.placedAgain,
            duplicatesAfterLossyFailover: world.duplicatesAfterLossyFailover,
            setting: world.setting,
            destroysBraked: world.database.destroysBrakedEntries,
            destroysAllowed: world.destroysSentWhileAllowed
        )
        world.tearDown()
        return outcome
    }

    // MARK: Randomness, time, trace

    func random() -> Double { Double.random(in: 0..<1, using: &generator) }

    func index(_ count: Int) -> Int { Int.random(in: 0..<count, using: &generator) }

    /// Draws of the second generator (see `hostileGenerator`).
    func hostileRandom() -> Double { Double.random(in: 0..<1, using: &hostileGenerator) }

    func hostileIndex(_ count: Int) -> Int { Int.random(in: 0..<count, using: &hostileGenerator) }

    /// Draws of the third generator (see `specificationGenerator`).
    func specificationRandom() -> Double { Double.random(in: 0..<1, using: &specificationGenerator) }

    /// Draws of the fourth generator (see `brakeGenerator`).
    func brakeRandom() -> Double { Double.random(in: 0..<1, using: &brakeGenerator) }

    func brakeIndex(_ count: Int) -> Int { Int.random(in: 0..<count, using: &brakeGenerator) }

    /// Suspends the calling task for `seconds` of world time.
    func pause(_ seconds: TimeInterval) async throws {
        try await time.sleep(untilNanoseconds: time.elapsed + Int64(max(0, seconds) * 1e9))
    }

    /// A line of the world's trace. Every line counts towards the trace's hash; the daemon's own
    /// log lines (`logged`, verbose runs only) are shown but not hashed, so that a verbose replay
    /// has the same hash as the run it replays.
    func trace(_ line: @autoclosure () -> String, logged: Bool = false) {
        // Unhashed and unshown: not even made.
        if logged, !verbose { return }
        let text = Self.stamp(nanoseconds: time.elapsed) + line()
        if !logged {
            for byte in text.utf8 {
                traceHash = (traceHash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        if verbose { traceLines.append(text) }
    }

    /// `[%9.3f] ` of the seconds since the world began, without `String(format:)`: every trace
    /// line is stamped (and hashed) whether shown or not, and vfprintf was the most of that.
    static func stamp(nanoseconds: Int64) -> String {
        let milliseconds = (max(0, nanoseconds) + 500_000) / 1_000_000
        let fraction = String(milliseconds % 1000)
        let number = "\(milliseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
        return "[" + String(repeating: " ", count: max(0, 9 - number.count)) + number + "] "
    }

    func violation(_ text: String) {
        trace("VIOLATION: \(text)")
        violations.append(String(format: "at %.3f s: ", time.now.timeIntervalSince(time.origin)) + text)
    }

    /// `text` with every id the daemon made up itself (an agent's, from `UUID()`) replaced by
    /// `agent-N`, numbered as they first appear: the same seed logs the same lines, byte for byte.
    func stableIDs(in text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let range = rest.firstRange(of: /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/) {
            result += rest[..<range.lowerBound]
            let id = String(rest[range])
            if let uuid = UUID(uuidString: id), labels[uuid] != nil {
                result += id
            } else {
                if madeUpIDs[id] == nil { madeUpIDs[id] = "agent-\(madeUpIDs.count + 1)" }
                result += madeUpIDs[id]!
            }
            rest = rest[range.upperBound...]
        }
        return result + rest
    }

    /// An instant as the trace shows it: seconds since the world began.
    func clock(_ instant: Date) -> String { String(format: "%.3f s", instant.timeIntervalSince(time.origin)) }

    func label(_ id: UUID) -> String { labels[id] ?? "row " + id.uuidString.prefix(8).lowercased() }

    func logger(for process: String) -> Logger {
        guard verbose else { return Logger(label: process, factory: { _ in SwiftLogNoOpLogHandler() }) }
        var logger = Logger(label: process) { _ in TraceLogHandler(world: self, process: process) }
        logger.logLevel = .info
        return logger
    }

    /// Called when a row stops being live (deleted with SQL, marked `deleted`, taken back), with
    /// the row as it was last: a destroy its deletion request asked for may still be on its way.
    func rowGone(_ row: ServerRecord) {
        rowGoneAt[row.id] = time.now
        if row.deleteRequestedAt != nil { goneAskingDeletion.insert(row.id) }
    }

    /// Called when a session takes the leadership lock.
    func leadershipTaken(by owner: String) {
        guard let frozenAt = leaderFrozenAt else { return }
        leaderFrozenAt = nil
        // Measured only for a standby that was running, and not frozen, all the while.
        guard let process = everyProcess.first(where: { $0.name == owner }), process.runningSince < frozenAt else {
            return
        }
        takeovers.append(time.now.timeIntervalSince(frozenAt))
    }

    /// Called for every row write the database accepts: the trace tells each row's story, and a
    /// status must not move backwards on the same droplet (`ConvergenceChecks.statusOrder`).
    func observeWrite(from: DaemonState, to: DaemonState, row: ServerRecord) {
        ConvergenceChecks.statusOrder(from: from, to: to, row: row, in: self)
        guard
            from.status != to.status || from.dropletID != to.dropletID || from.createAttemptedAt != to.createAttemptedAt
        else { return }
        trace(
            "db: \(label(row.id)) \(from.status.rawValue) → \(to.status.rawValue)"
                + (to.dropletID.map { " droplet \($0)" } ?? "")
                + (from.createAttemptedAt != to.createAttemptedAt
                    ? " intent \(to.createAttemptedAt.map { String(format: "%.3f", $0.timeIntervalSince(time.origin)) } ?? "cleared")"
                    : "")
        )
    }
}
