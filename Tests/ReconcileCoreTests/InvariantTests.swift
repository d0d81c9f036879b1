import Foundation
import Synchronization
import Testing

@testable import ReconcileCore

/// The production code's own checks report what breaks them (to the simulation, when it binds a
/// reporter), and stay quiet on what the decision makes.
@Suite("Invariants in production code")
struct InvariantTests {
    /// What `body` reported.
    func reports(_ body: () -> Void) -> [String] {
        let seen = Mutex<[String]>([])
        Invariants.reporting(to: { message in seen.withLock { $0.append(message) } }) { body() }
        return seen.withLock { $0 }
    }

    func order(_ n: Int) -> CreateOrder {
        CreateOrder(
            rowID: rowID(n),
            name: "web-\(n)",
            region: "nyc3",
            size: "s-1vcpu-1gb",
            image: "debian-12-x64"
        )
    }

    @Test("a plan that creates twice for one row is reported")
    func twoCreates() {
        let plan = Plan(actions: [
            .create(order(1), expectedRevision: 7, state: row(1).state),
            .create(order(2), expectedRevision: 7, state: row(2).state),
            .create(order(1), expectedRevision: 7, state: row(1).state),
        ])
        let reported = reports {
            Invariants.check(plan, rows: [row(1), row(2)], observation: Observation(droplets: [], listedAt: now))
        }
        #expect(reported.count == 1)
        #expect(reported.first?.contains("creates twice for row \(rowID(1))") == true)
    }

    @Test("a plan that destroys a droplet a live row keeps, or one without the fleet tag, is reported")
    func destroys() {
        let kept = row(1, status: .active, dropletID: 41)
        let plan = Plan(actions: [
            .destroy(dropletID: 41, reason: .orphan(identity: nil)),
            .destroy(dropletID: 42, reason: .orphan(identity: nil)),
            .destroy(dropletID: 43, reason: .deleteRequested(row: rowID(3))),
        ])
        let observation = Observation(
            droplets: [droplet(41, for: 1), droplet(42, for: nil, fleet: false), droplet(43, for: 3)],
            listedAt: now
        )
        let reported = reports {
            Invariants.check(
                plan,
                rows: [kept, row(3, status: .active, dropletID: 43, deleteRequested: true)],
                observation: observation
            )
        }
        #expect(reported.count == 2)
        #expect(reported.contains { $0.contains("destroys droplet 41, which row \(rowID(1)) keeps") })
        #expect(reported.contains { $0.contains("destroys droplet 42, which lacks the fleet tag") })
    }

    @Test("a write that takes create attempts back, or stamps a reach before the attempt, is reported")
    func writes() {
        let before = DaemonState(status: .creating, createAttempts: 3)
        var back = before
        back.createAttempts = 2
        var reach = before
        reach.createAttempts = 4
        reach.createAttemptedAt = now
        reach.createReachableUntil = now.addingTimeInterval(-1)
        let reported = reports {
            _ = Transition(row: row(1), from: before, to: back, at: now)
            _ = Transition(row: row(1), from: before, to: reach, at: now)
        }
        #expect(reported.count == 2)
        #expect(reported.first?.contains("create attempts go down, 3 to 2") == true)
        #expect(reported.last?.contains("before it was made") == true)
    }

    @Test("the decision's own plans and the outcomes' writes break none of them", arguments: 0..<20)
    func decisionsAreClean(seed: Int) {
        let decider = Decider(configuration: DecisionConfiguration())
        let rows = (1...6).map { n in
            row(n, status: n % 3 == 0 ? .active : .creating, dropletID: n % 3 == 0 ? Int64(n) : nil)
        }
        let droplets = [droplet(3, for: 3), droplet(6, for: 6), droplet(99, for: nil), droplet(4, for: 4)]
        let reported = reports {
            _ = decider.decide(
                rows: rows,
                observation: Observation(droplets: droplets, listedAt: now),
                now: now.addingTimeInterval(Double(seed) * 60)
            )
            let before = row(1).state
            let intent = decider.intent(from: before, at: now)
            for outcome: CreateOutcome in [
                .accepted(droplet(7, for: 1)), .refused(reason: "422"), .transient(reason: "429", retryAfter: nil),
                .unknown(reason: "500"), .withdrawn(reason: "stale"),
            ] {
                let next = decider.afterCreate(
                    outcome,
                    before: before,
                    intent: intent,
                    at: now.addingTimeInterval(-5),
                    jitter: 0.5
                )
                _ = Transition(row: row(1), from: intent, to: next, at: now)
            }
        }
        #expect(reported == [])
    }
}
