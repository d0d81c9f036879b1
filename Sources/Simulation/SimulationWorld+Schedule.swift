import DigitalOceanModel
import Foundation
import Logging
import ReconcileCore
import Reconciler

/// The world's schedule: what the seed draws at the start, the ticks, replicas started, crashed
/// and frozen, and the quiet point.
extension SimulationWorld {
    func setUp() {
        faults.draw()
        drawSetting()
        drawSpecification()
        drawDestroyBudget()
        let replicas = 1 + index(3)
        skews = (0..<replicas).map { _ in (random() - 0.5) * 240 }
        incarnations = Array(repeating: 0, count: replicas)
        let perMinute = [250, 60, 25][index(3)]
        budgetPerMinute = perMinute
        pageSize = [200, 5, 2][index(3)]
        digitalOcean = makeDigitalOcean(perMinute: perMinute)
        if let adjustFaults { digitalOcean.updateFaults(adjustFaults) }
        let faultDuration = 240 + random() * 240
        quietAt = time.origin.addingTimeInterval(faultDuration)
        trace(
            "seed \(seed): \(replicas) replicas (skews \(skews.map { String(format: "%+.1f s", $0) }.joined(separator: ", "))), "
                + "\(perMinute)/min, pages of \(pageSize), full lists \(listBudgetPerHour) requests/h "
                + "in slices of \(listPagesPerSlice), faults for \(Int(faultDuration)) s; \(setting)"
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
            // Made by hand, it runs no agent: with agent bootstrap its row may end failed.
            if agentBootstrap { disturbed.insert(row.id) }
            let madeAt = at(0...end - 60)
            time.schedule(at: madeAt) { [unowned self] in
                self.makeByHand(name: "web-pre", tags: [FleetTags.fleet, row.identityTag])
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
                self.makeByHand(name: "orphan", tags: [FleetTags.fleet, FleetTags.identity(for: stranger)])
            }
        }
        if random() < 0.3 {
            time.schedule(at: at(0...end)) { [unowned self] in
                guard let row = self.database.rows.values.min(by: { $0.id.uuidString < $1.id.uuidString }) else {
                    return
                }
                self.makeByHand(name: "untagged", tags: [row.identityTag])
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
            time.schedule(at: takenAt) { [unowned self] in self.snapshot = (self.time.now, self.database.tables) }
            time.schedule(at: takenAt.addingTimeInterval(30 + random() * 120)) { [unowned self] in self.restore() }
        }
        // Another tool spending the token's minute.
        if random() < 0.3 {
            let from = at(0...end)
            let share = random()
            for second in stride(from: 0.0, to: 120, by: 1) {
                time.schedule(at: from.addingTimeInterval(second)) { [unowned self] in
                    if self.random() < share { self.digitalOcean.spendRequest(token: Self.daemonToken) }
                }
            }
        }
        scheduleLiveChanges(end: end, at: at)
        scheduleHostility(end: end)
        scheduleBacklogs(end: end)
        scheduleSpecificationChanges(end: end)
        scheduleBrakes(end: end)
        time.schedule(at: quietAt) { [unowned self] in self.becomeQuiet() }
    }

    /// Every second: the server ends silent sessions; every 15 s after the quiet point, the run
    /// ends early once everything has converged.
    func tick() {
        guard !time.draining else { return }
        database.endSilentSessions()
        LeadershipChecks.leadersCanAct(in: self)
        LeadershipChecks.frozenLeaderReplaced(in: self)
        let sinceQuiet = time.now.timeIntervalSince(quietAt)
        if sinceQuiet > 0, Int(sinceQuiet) % 15 == 0, ConvergenceChecks.converged(final: false, in: self) {
            finished = true
        }
        time.schedule(after: 1) { [unowned self] in self.tick() }
    }

    func start(slot: Int) {
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

    func crash(slot: Int, restartAfter delay: TimeInterval) {
        guard let process = slots[slot], process.isAlive, time.now < quietAt else { return }
        trace("\(process.name) killed (SIGKILL)")
        process.crash()
        time.schedule(after: delay) { [unowned self] in self.start(slot: slot) }
    }

    func freeze(slot: Int, for duration: TimeInterval) {
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

    func becomeQuiet() {
        trace("faults stop; every row must converge within \(Int(convergenceBound)) s")
        allowDestroysToTheEnd()
        quietDigitalOcean()
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
}
