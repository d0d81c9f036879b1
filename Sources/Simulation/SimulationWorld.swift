import DigitalOceanSimulator
import Foundation
import Logging
import ReconcileCore
import Reconciler

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
    }

    let time = VirtualTime(origin: Date(timeIntervalSince1970: 1_800_000_000))
    private var generator: SeededGenerator
    let seed: UInt64
    private(set) var database: SimulatedDatabase!
    private(set) var digitalOcean: SimulatedDigitalOcean!
    private(set) var faults: FaultPlan!
    /// The last replica of each slot (replaced on restart) and every process ever started.
    private var slots: [SimulatedProcess?] = []
    private var everyProcess: [SimulatedProcess] = []
    private var incarnations: [Int] = []
    private var skews: [TimeInterval] = []
    private var budgetPerMinute = 250
    /// Faults and operator events stop here; from then on the world only watches convergence.
    private(set) var quietAt: Date
    let requestTimeout: TimeInterval = 30
    /// How long after `quietAt` every row must have converged.
    let convergenceBound: TimeInterval = 900

    private let verbose: Bool
    private var traceLines: [String] = []
    private var traceHash: UInt64 = 0xcbf2_9ce4_8422_2325
    private(set) var violations: [String] = []
    private var steps = 0
    var requests = 0
    var lastCreateSentAt: [UUID: Date] = [:]
    var createsTakenEffect: [UUID: Int] = [:]
    private var labels: [UUID: String] = [:]
    /// Rows something out of band happened to (a droplet destroyed at DigitalOcean, a restore):
    /// they may end failed; every other valid row must end active or deleted.
    private var disturbed: Set<UUID> = []
    private var invalid: Set<UUID> = []
    private var snapshot: (at: Date, rows: [UUID: ServerRecord])?
    /// When the process holding the lock was frozen, while it still holds it.
    private var leaderFrozenAt: Date?
    private(set) var takeovers: [Double] = []

    init(seed: UInt64, verbose: Bool) {
        self.seed = seed
        self.verbose = verbose
        generator = SeededGenerator(seed: seed)
        quietAt = time.origin
        faults = FaultPlan(world: self)
        database = SimulatedDatabase(world: self, silenceLimit: 15)
        digitalOcean = SimulatedDigitalOcean(world: self, perMinute: 250, pageSize: 200)
    }

    /// Runs one seed to the end and tears everything down.
    public static func run(seed: UInt64, verbose: Bool = false) -> Outcome {
        let world = SimulationWorld(seed: seed, verbose: verbose)
        world.setUp()
        world.drive(until: world.quietAt.addingTimeInterval(world.convergenceBound))
        if world.violations.isEmpty { world.checkConvergence(final: true) }
        let outcome = Outcome(
            seed: seed,
            violations: world.violations,
            trace: world.traceLines,
            traceHash: world.traceHash,
            steps: world.steps,
            virtualSeconds: world.time.now.timeIntervalSince(world.time.origin),
            requests: world.requests,
            replicas: world.slots.count,
            rows: world.database.rows.count,
            takeovers: world.takeovers
        )
        world.tearDown()
        return outcome
    }

    // MARK: Randomness, time, trace

    func random() -> Double { Double.random(in: 0..<1, using: &generator) }

    private func index(_ count: Int) -> Int { Int.random(in: 0..<count, using: &generator) }

    /// Suspends the calling task for `seconds` of world time.
    func pause(_ seconds: TimeInterval) async throws {
        try await time.sleep(untilNanoseconds: time.elapsed + Int64(max(0, seconds) * 1e9))
    }

    /// A line of the world's trace. Every line counts towards the trace's hash; the daemon's own
    /// log lines (`logged`, verbose runs only) are shown but not hashed, so that a verbose replay
    /// has the same hash as the run it replays.
    func trace(_ line: @autoclosure () -> String, logged: Bool = false) {
        let text = String(format: "[%9.3f] ", time.now.timeIntervalSince(time.origin)) + line()
        if !logged {
            for byte in text.utf8 {
                traceHash = (traceHash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        if verbose { traceLines.append(text) }
    }

    func violation(_ text: String) {
        trace("VIOLATION: \(text)")
        violations.append(String(format: "at %.3f s: ", time.now.timeIntervalSince(time.origin)) + text)
    }

    func label(_ id: UUID) -> String { labels[id] ?? "row " + id.uuidString.prefix(8).lowercased() }

    func logger(for process: String) -> Logger {
        guard verbose else { return Logger(label: process, factory: { _ in SwiftLogNoOpLogHandler() }) }
        var logger = Logger(label: process) { _ in TraceLogHandler(world: self, process: process) }
        logger.logLevel = .info
        return logger
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

    /// Called for every row write the database accepts: the trace tells each row's story.
    func observeWrite(from: DaemonState, to: DaemonState, row: ServerRecord) {
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

    // MARK: The world's schedule

    private func setUp() {
        faults.draw()
        let replicas = 1 + index(3)
        skews = (0..<replicas).map { _ in (random() - 0.5) * 240 }
        incarnations = Array(repeating: 0, count: replicas)
        let perMinute = [250, 60, 25][index(3)]
        budgetPerMinute = perMinute
        digitalOcean = SimulatedDigitalOcean(world: self, perMinute: perMinute, pageSize: [200, 5, 2][index(3)])
        let faultDuration = 240 + random() * 240
        quietAt = time.origin.addingTimeInterval(faultDuration)
        trace(
            "seed \(seed): \(replicas) replicas (skews \(skews.map { String(format: "%+.1f s", $0) }.joined(separator: ", "))), "
                + "\(perMinute)/min, pages of \(digitalOcean.pageSize), faults for \(Int(faultDuration)) s"
        )
        slots = Array(repeating: nil, count: replicas)
        for slot in 0..<replicas { start(slot: slot) }
        time.schedule(after: 1) { [unowned self] in self.tick() }

        let end = faultDuration - 30
        func at(_ range: ClosedRange<Double>) -> Date {
            time.origin.addingTimeInterval(range.lowerBound + random() * (range.upperBound - range.lowerBound))
        }
        var rowNumber = 0
        func newRow(name: String? = nil) -> ServerRecord {
            rowNumber += 1
            let id = UUID(
                uuid: (
                    0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, UInt8(truncatingIfNeeded: seed),
                    UInt8(truncatingIfNeeded: seed >> 8),
                    UInt8(truncatingIfNeeded: rowNumber >> 8), UInt8(truncatingIfNeeded: rowNumber)
                )
            )
            labels[id] = "row\(rowNumber)"
            let valid = random() >= 0.1
            if !valid { invalid.insert(id) }
            return ServerRecord(id: id, name: name ?? (valid ? "web-\(rowNumber)" : "bad_name_\(rowNumber)"))
        }
        // Rows, and requests to delete some of them.
        for _ in 0..<(2 + index(7)) {
            let row = newRow()
            let insertAt = rowNumber <= 3 ? at(0...20) : at(0...end)
            time.schedule(at: insertAt) { [unowned self] in self.insert(row) }
            if random() < 0.25 {
                time.schedule(at: insertAt.addingTimeInterval(random() * 200)) { [unowned self] in
                    self.requestDeletion(row.id)
                }
            }
        }
        // A burst larger than a minute's budget: creates wait long in the rate budget.
        if perMinute <= 60, random() < 0.3 {
            let burstAt = at(0...end / 2)
            for _ in 0..<(perMinute / 2 + index(perMinute + 1)) {
                let row = newRow()
                time.schedule(at: burstAt.addingTimeInterval(random() * 2)) { [unowned self] in self.insert(row) }
            }
        }
        // A droplet made ahead of time with a row's identity; the row comes later than any list lag.
        if random() < 0.3 {
            let row = newRow()
            invalid.remove(row.id)
            let madeAt = at(0...end - 60)
            time.schedule(at: madeAt) { [unowned self] in
                self.digitalOcean.make(name: "web-pre", tags: [FleetTags.fleet, row.identityTag], by: "world")
            }
            time.schedule(at: madeAt.addingTimeInterval(FaultPlan.maxListLag + 1 + random() * 30)) { [unowned self] in
                var valid = row
                valid.name = "web-pre"
                self.insert(valid)
            }
        }
        // A row deleted with SQL and inserted again with the same id, its droplet still there.
        if random() < 0.3 { time.schedule(at: at(60...end)) { [unowned self] in self.deleteAndReinsert() } }
        // A droplet destroyed out of band: its row must fail saying so.
        if random() < 0.2 { time.schedule(at: at(60...end)) { [unowned self] in self.destroyOutOfBand() } }
        // An orphan (fleet tag, no row) and a droplet without the fleet tag: never touched.
        if random() < 0.3 {
            time.schedule(at: at(0...end)) { [unowned self] in
                let stranger = UUID(
                    uuid: (9, 9, 9, 9, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, UInt8(truncatingIfNeeded: self.seed))
                )
                self.digitalOcean.make(
                    name: "orphan",
                    tags: [FleetTags.fleet, FleetTags.identity(for: stranger)],
                    by: "world"
                )
            }
        }
        if random() < 0.3 {
            time.schedule(at: at(0...end)) { [unowned self] in
                guard let row = self.database.rows.values.min(by: { $0.id.uuidString < $1.id.uuidString }) else {
                    return
                }
                self.digitalOcean.make(name: "untagged", tags: [row.identityTag], by: "world")
            }
        }
        // An operator renames a row while the daemon works on it.
        if random() < 0.3 {
            time.schedule(at: at(10...end)) { [unowned self] in
                guard let row = self.database.rows.values.min(by: { $0.id.uuidString < $1.id.uuidString }) else {
                    return
                }
                self.database.update(row.id) { $0.name += "-renamed" }
                self.notify(row.id)
            }
        }
        // Processes: crashes with restarts, freezes.
        for _ in 0..<index(4) {
            let slot = index(replicas)
            time.schedule(at: at(5...end)) { [unowned self] in
                self.crash(slot: slot, restartAfter: 1 + self.random() * 30)
            }
        }
        for _ in 0..<index(3) {
            let slot = index(replicas)
            time.schedule(at: at(5...end)) { [unowned self] in self.freeze(slot: slot, for: 5 + self.random() * 90) }
        }
        // The database restored from a backup taken a little earlier.
        if random() < 0.15 {
            let takenAt = at(30...end - 60)
            time.schedule(at: takenAt) { [unowned self] in self.snapshot = (self.time.now, self.database.rows) }
            time.schedule(at: takenAt.addingTimeInterval(30 + random() * 120)) { [unowned self] in self.restore() }
        }
        // Another tool spending the token's minute.
        if random() < 0.3 {
            let from = at(0...end)
            let share = random()
            for second in stride(from: 0.0, to: 120, by: 1) {
                time.schedule(at: from.addingTimeInterval(second)) { [unowned self] in
                    if self.random() < share { _ = self.digitalOcean.admit() }
                }
            }
        }
        time.schedule(at: quietAt) { [unowned self] in self.becomeQuiet() }
    }

    /// Every second: the server ends silent sessions; every 15 s after the quiet point, the run
    /// ends early once everything has converged.
    private func tick() {
        guard !time.draining else { return }
        database.endSilentSessions()
        // The design's promise: a frozen leader is replaced within 30 s by a standby that was
        // running all the while (a standby that froze or crashed meanwhile cannot be asked to).
        if let frozenAt = leaderFrozenAt, time.now.timeIntervalSince(frozenAt) > 30,
            let standby = slots.first(where: {
                $0 != nil && $0!.isAlive && !$0!.executor.frozen && $0!.runningSince < frozenAt
            }),
            let standby
        {
            leaderFrozenAt = nil
            violation(
                "the leader froze at \(String(format: "%.1f", frozenAt.timeIntervalSince(time.origin))) s and \(standby.name) had not taken over 30 s later"
                    + " (it thinks it leads: \(standby.leadership.isLeading); \(standby.executor.pending) jobs ready)"
            )
        }
        let sinceQuiet = time.now.timeIntervalSince(quietAt)
        if sinceQuiet > 0, Int(sinceQuiet) % 15 == 0, checkConvergence(final: false) { finished = true }
        time.schedule(after: 1) { [unowned self] in self.tick() }
    }

    private var finished = false

    private func start(slot: Int) {
        incarnations[slot] += 1
        let process = SimulatedProcess(
            world: self,
            name: "r\(slot + 1).\(incarnations[slot])",
            skew: skews[slot],
            perMinute: budgetPerMinute
        )
        slots[slot] = process
        everyProcess.append(process)
        trace("\(process.name) started")
    }

    private func crash(slot: Int, restartAfter delay: TimeInterval) {
        guard let process = slots[slot], process.isAlive, time.now < quietAt else { return }
        trace("\(process.name) killed (SIGKILL)")
        process.crash()
        time.schedule(after: delay) { [unowned self] in self.start(slot: slot) }
    }

    private func freeze(slot: Int, for duration: TimeInterval) {
        guard let process = slots[slot], process.isAlive, !process.executor.frozen else { return }
        trace("\(process.name) frozen for \(Int(duration)) s")
        process.executor.frozen = true
        process.frozenSince = time.now
        if let holder = database.lockHolder, database.owner(of: holder) == process.name,
            slots.contains(where: { $0 != nil && $0 !== process && $0!.isAlive })
        {
            leaderFrozenAt = time.now
        }
        time.schedule(after: duration) { [unowned self] in
            process.executor.frozen = false
            process.frozenSince = nil
            process.runningSince = self.time.now
            // Thawed before anyone took over (a short freeze): nothing to measure.
            if let holder = self.database.lockHolder, self.database.owner(of: holder) == process.name {
                self.leaderFrozenAt = nil
            }
            self.trace("\(process.name) resumed")
        }
    }

    private func becomeQuiet() {
        trace("faults stop; every row must converge within \(Int(convergenceBound)) s")
        for (slot, process) in slots.enumerated() {
            if let process, process.isAlive {
                if process.executor.frozen {
                    process.executor.frozen = false
                    process.runningSince = time.now
                }
            } else {
                start(slot: slot)
            }
        }
    }

    // MARK: Operators

    private func insert(_ row: ServerRecord) {
        var row = row
        row.createdAt = time.now
        row.state = DaemonState()
        database.insert(row)
        trace("operator: INSERT \(label(row.id)) (\(row.name))")
        notify(row.id)
    }

    private func requestDeletion(_ id: UUID) {
        guard database.rows[id] != nil, time.now < quietAt else { return }
        database.update(id) { $0.deleteRequestedAt = self.time.now }
        trace("operator: delete requested for \(label(id))")
        notify(id)
    }

    /// NOTIFY reaches every listening process a moment later, unless it is lost.
    private func notify(_ id: UUID) {
        for process in slots.compactMap({ $0 }) where process.isAlive {
            guard !faults.notificationLost() else { continue }
            time.schedule(after: 0.001 + random() * 0.05) { process.wake.signal(row: id) }
        }
    }

    /// Whether no create for `id` may still be in flight or hidden by list lag.
    private func quiet(_ id: UUID) -> Bool {
        guard let sent = lastCreateSentAt[id] else { return true }
        return time.now.timeIntervalSince(sent) > requestTimeout + FaultPlan.maxLateEffect + FaultPlan.maxListLag + 5
    }

    private func deleteAndReinsert() {
        let candidates = database.rows.values.filter {
            $0.state.status == .active && $0.deleteRequestedAt == nil && $0.state.dropletID != nil && quiet($0.id)
        }.sorted { $0.id.uuidString < $1.id.uuidString }
        guard !candidates.isEmpty else { return }
        let row = candidates[index(candidates.count)]
        database.remove(row.id)
        trace("operator: DELETE \(label(row.id)) with SQL; it comes back with the same id")
        notify(row.id)
        time.schedule(after: 1 + random() * 20) { [unowned self] in
            var again = row
            again.revision = 0
            self.insert(again)
        }
    }

    private func destroyOutOfBand() {
        let candidates = database.rows.values.filter { $0.state.dropletID != nil && $0.deleteRequestedAt == nil }
            .sorted { $0.id.uuidString < $1.id.uuidString }
        guard !candidates.isEmpty else { return }
        let row = candidates[index(candidates.count)]
        for droplet in digitalOcean.droplets(identity: row.id) { digitalOcean.destroy(droplet.id, by: "world") }
        disturbed.insert(row.id)
        trace("operator: destroyed \(label(row.id))'s droplet at DigitalOcean, out of band")
    }

    /// A restore needs a quiet moment. A backup cannot know of a create intended or sent since
    /// (no daemon could: its only record is the row the restore takes back), nor take back a
    /// deletion whose DELETE may already be on its way.
    private func restore() {
        guard let snapshot else { return }
        let window = requestTimeout + FaultPlan.maxLateEffect + FaultPlan.maxListLag + 10
        let createsSettled = database.rows.values.allSatisfy { row in
            quiet(row.id) && row.state.createAttemptedAt.map { time.now.timeIntervalSince($0) > window } ?? true
        }
        let deletionsKept = database.rows.values.allSatisfy { row in
            row.deleteRequestedAt == nil || snapshot.rows[row.id]?.deleteRequestedAt != nil
        }
        guard createsSettled, deletionsKept else {
            trace("operator: restore skipped (creates or deletions in flight)")
            return
        }
        disturbed.formUnion(database.rows.keys)
        disturbed.formUnion(snapshot.rows.keys)
        database.restore(snapshot.rows)
        trace(
            String(
                format: "operator: database restored from the backup of %.1f s",
                snapshot.at.timeIntervalSince(time.origin)
            )
        )
        for id in database.rows.keys.sorted(by: { $0.uuidString < $1.uuidString }) { notify(id) }
    }

    // MARK: Running

    private func drive(until end: Date) {
        while !finished {
            var stepsAtThisInstant = 0
            while violations.isEmpty {
                let runnable = everyProcess.filter { $0.executor.runnable }
                guard !runnable.isEmpty else { break }
                runnable[index(runnable.count)].executor.runOne(pick: index)
                steps += 1
                stepsAtThisInstant += 1
                if stepsAtThisInstant > 200_000 {
                    let busy = everyProcess.filter { $0.executor.runnable }.map {
                        "\($0.name) (\($0.executor.pending) jobs)"
                    }
                    violation("livelock: 200,000 steps without time moving in \(busy.joined(separator: ", "))")
                    return
                }
            }
            guard violations.isEmpty, time.advance(limit: end) else { return }
        }
    }

    private func tearDown() {
        time.draining = true
        for process in everyProcess { process.stop() }
        var rounds = 0
        while rounds < 1_000_000 {
            rounds += 1
            let runnable = everyProcess.filter { $0.executor.runnable }
            if let process = runnable.first {
                process.executor.runOne { _ in 0 }
            } else if !time.advance(limit: .distantFuture) {
                break
            }
        }
    }

    // MARK: Liveness

    /// Whether every row has converged; when `final`, a row that has not is a violation.
    @discardableResult
    func checkConvergence(final: Bool) -> Bool {
        var converged = true
        for row in database.rows.values.sorted(by: { $0.id.uuidString < $1.id.uuidString }) {
            let live = digitalOcean.droplets(identity: row.id).filter { $0.tags.contains(FleetTags.fleet) }
            let oldest = live.min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            let state = row.state
            var problem: String?
            if [.creating, .provisioning, .deleting].contains(state.status) {
                problem = "still \(state.status.rawValue)"
            } else if row.deleteRequestedAt != nil {
                if state.status != .deleted || !live.isEmpty {
                    problem = "deletion requested: \(state.status.rawValue) with \(live.count) droplets"
                }
            } else if invalid.contains(row.id) {
                if state.status != .failed { problem = "has an invalid name but is \(state.status.rawValue)" }
            } else if state.status == .active {
                if live.count != 1 || state.dropletID != oldest?.id {
                    problem =
                        "active with droplet \(state.dropletID.map(String.init) ?? "none") but \(live.count) droplets carry its identity"
                }
            } else if !(state.status == .failed && disturbed.contains(row.id)) {
                problem = "is \(state.status.rawValue) (\(state.lastError ?? "no error"))"
            }
            if let problem {
                converged = false
                if final { violation("\(label(row.id)) did not converge: \(problem)") }
            }
        }
        return converged
    }
}

/// Log lines of the daemon's own code, in the trace (verbose runs only).
struct TraceLogHandler: LogHandler {
    unowned let world: SimulationWorld
    let process: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        world.trace("\(process) [\(event.level)] \(event.message)", logged: true)
    }
}
