import Foundation
import ReconcileCore
import Testing

/// Creating rows with no droplet in sight: when to create, when to wait.
@Suite("Creates")
struct CreateTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var testDescription: String
        /// When the last create was sent (nil: never).
        var attemptedAt: Date?
        /// When the list was requested.
        var listedAt: Date
        var backoffUntil: Date?
        var expectCreate: Bool
        var expectWaiting: Bool
        var expectWakeUp: Date?
    }

    static let cases: [Case] = [
        Case(
            testDescription: "no attempt yet → create",
            attemptedAt: nil,
            listedAt: seconds(-1),
            expectCreate: true,
            expectWaiting: true
        ),
        Case(
            testDescription: "no attempt, in backoff → nothing until the backoff ends",
            attemptedAt: nil,
            listedAt: seconds(-1),
            backoffUntil: seconds(8),
            expectCreate: false,
            expectWaiting: false,
            expectWakeUp: seconds(8)
        ),
        Case(
            testDescription: "no attempt, backoff already over → create",
            attemptedAt: nil,
            listedAt: seconds(-1),
            backoffUntil: seconds(-1),
            expectCreate: true,
            expectWaiting: true
        ),
        Case(
            testDescription: "attempt 10 s ago (unsettled) → wait for the settle period",
            attemptedAt: seconds(-10),
            listedAt: seconds(-1),
            expectCreate: false,
            expectWaiting: true,
            expectWakeUp: seconds(50)
        ),
        Case(
            testDescription: "attempt 70 s ago but the list was sent 59 s after it → still unsettled",
            attemptedAt: seconds(-70),
            listedAt: seconds(-11),
            expectCreate: false,
            expectWaiting: true,
            expectWakeUp: nil
        ),
        Case(
            testDescription: "list sent exactly a settle period after the attempt → settled, create again",
            attemptedAt: seconds(-70),
            listedAt: seconds(-10),
            expectCreate: true,
            expectWaiting: true
        ),
        Case(
            testDescription: "attempt 5 min ago, list after settle shows nothing → create again",
            attemptedAt: seconds(-300),
            listedAt: seconds(-1),
            expectCreate: true,
            expectWaiting: true
        ),
        Case(
            testDescription: "settled attempt, in backoff → wait for the backoff",
            attemptedAt: seconds(-300),
            listedAt: seconds(-1),
            backoffUntil: seconds(30),
            expectCreate: false,
            expectWaiting: true,
            expectWakeUp: seconds(30)
        ),
        Case(
            testDescription: "unsettled attempt and backoff → wake at the earlier deadline",
            attemptedAt: seconds(-40),
            listedAt: seconds(-1),
            backoffUntil: seconds(45),
            expectCreate: false,
            expectWaiting: true,
            expectWakeUp: seconds(20)
        ),
    ]

    @Test(arguments: cases)
    func creatingRowWithNoDroplet(_ c: Case) throws {
        let r = row(
            status: .creating,
            attemptedAt: c.attemptedAt,
            attempts: c.attemptedAt == nil ? 0 : 1,
            failures: c.backoffUntil == nil ? 0 : 1,
            nextAttemptAt: c.backoffUntil
        )
        // Another row's droplet and an untagged droplet with the same name must not count.
        let others = [droplet(200, for: 2), droplet(201, for: nil, fleet: false)]
        let plan = decide(
            [r, row(2, status: .active, dropletID: 200, ipv4: ipv4, ipv6: ipv6)],
            observe(others, listedAt: c.listedAt)
        )
        #expect(plan.updates.isEmpty, "the loop writes the create intent itself")
        #expect(plan.destroys.isEmpty)
        #expect(plan.waitingOnCloud == c.expectWaiting)
        #expect(plan.nextWakeUp == c.expectWakeUp)
        if c.expectCreate {
            let create = try #require(plan.creates.first)
            #expect(plan.creates.count == 1)
            #expect(create.expectedRevision == r.revision)
            #expect(create.state == r.state)
            #expect(
                create.order
                    == CreateOrder(
                        rowID: r.id,
                        name: "web-1",
                        region: "nyc3",
                        size: "s-1vcpu-1gb",
                        image: "debian-12-x64"
                    )
            )
            #expect(create.order.tags == ["citrus-host", "citrus-server:00000000-0000-4000-8000-000000000001"])
        } else {
            #expect(plan.creates.isEmpty)
        }
    }

    @Test(
        "transient trouble never fails a row: a settled uncertain attempt is followed by another create, however many came before"
    )
    func uncertainAttemptsNeverExhaust() throws {
        // Fifteen minutes of 5xx answers at a ~95 s rhythm is about ten attempts; a hundred must not fail the row either.
        for attempts in [1, 10, 100] {
            let r = row(
                status: .creating,
                lastError: "create outcome unknown (HTTP 500)",
                attemptedAt: seconds(-300),
                attempts: attempts
            )
            let plan = decide([r], observe([]))
            #expect(plan.creates.count == 1, "attempt \(attempts + 1) is sent")
            #expect(plan.written(r)?.status != .failed)
        }
    }

    @Test("the settle period is the configured one")
    func configuredSettlePeriod() {
        var configuration = DecisionConfiguration()
        configuration.settlePeriod = .seconds(300)
        let r = row(status: .creating, attemptedAt: seconds(-120), attempts: 1)
        let plan = decide([r], observe([]), configuration: configuration)
        #expect(plan.creates.isEmpty)
        #expect(plan.nextWakeUp == seconds(180))
        #expect(decide([r], observe([])).creates.count == 1, "with the default 60 s it would create")
    }

    @Test(
        "uncertain create whose droplet shows up late → bound and adopted, never created twice",
        arguments: [seconds(-10), seconds(-300)]
    )
    func lateDropletAfterUncertainCreate(attemptedAt: Date) throws {
        let r = row(
            status: .creating,
            lastError: "create timed out",
            attemptedAt: attemptedAt,
            attempts: 1,
            failures: 1
        )
        let plan = decide([r], observe([droplet(100, for: 1, status: .new, ipv4: nil, ipv6: nil)]))
        #expect(plan.creates.isEmpty)
        let after = try #require(plan.written(r))
        #expect(after.status == .provisioning)
        #expect(after.dropletID == 100)
        #expect(after.lastError == nil)
        #expect(after.transientFailures == 0)
        #expect(plan.adoptions == [.adopted(row: r.id, droplet: 100)])
    }

    @Test("a creating row in backoff still binds a droplet that appears")
    func backoffDoesNotBlockBinding() {
        let r = row(status: .creating, attemptedAt: seconds(-10), attempts: 1, failures: 3, nextAttemptAt: seconds(60))
        let plan = decide([r], observe([droplet(100, for: 1)]))
        #expect(plan.after(r).status == .active)
        #expect(plan.after(r).nextAttemptAt == nil)
    }

    @Test("each row gets its own create with its own identity tag")
    func independentRows() {
        let rows = (1...3).map { row($0) }
        let plan = decide(rows, observe([]))
        #expect(plan.creates.map(\.order.rowID) == rows.map(\.id))
        #expect(plan.creates.map { $0.order.tags.last } == rows.map(\.identityTag))
    }
}
