import Foundation
import ReconcileCore
import Testing

/// What a create's outcome makes of the row: the rules the act layer performs and nothing more.
@Suite("Create outcomes")
struct CreateOutcomeTests {
    let decider = Decider()
    let before = DaemonState(
        status: .creating,
        lastError: "an earlier try",
        createAttemptedAt: seconds(-400),
        createReachableUntil: seconds(-365),
        createAttempts: 2,
        transientFailures: 1,
        nextAttemptAt: seconds(-5)
    )

    var intent: DaemonState { decider.intent(from: before, at: now) }

    @Test(
        "the intent stamps the attempt and the last instant it can reach DigitalOcean: send window plus request deadline"
    )
    func intentStamps() {
        #expect(intent.createAttemptedAt == now)
        #expect(intent.createReachableUntil == seconds(35))
        #expect(intent.createAttempts == 3)
        #expect(intent.status == .creating)
    }

    @Test(
        "a create is sent only within the send window of its intent",
        arguments: [(0.0, true), (5.0, true), (5.001, false), (60.0, false)]
    )
    func sendWindow(age: Double, sends: Bool) {
        #expect(decider.maySend(intentAge: .interval(age)) == sends)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var testDescription: String
        var outcome: CreateOutcome
        var status: ServerStatus
        var dropletID: Int64?
        /// nil: the intent's stamps stand; otherwise the stamps before it.
        var keepsIntentStamps: Bool
        var backsOff: Bool
        var error: String?
    }

    static let cases: [Case] = [
        Case(
            testDescription: "accepted → provisioning with the droplet, errors and backoff cleared",
            outcome: .accepted(droplet(900, for: 1, status: .new)),
            status: .provisioning,
            dropletID: 900,
            keepsIntentStamps: true,
            backsOff: false,
            error: nil
        ),
        Case(
            testDescription: "refused (422) → failed saying why; nothing was made, earlier stamps stand",
            outcome: .refused(reason: "size is not available"),
            status: .failed,
            keepsIntentStamps: false,
            backsOff: false,
            error: "DigitalOcean refused the droplet: size is not available"
        ),
        Case(
            testDescription: "transient (429) → back off; nothing was made, so the attempt's stamps are dropped",
            outcome: .transient(reason: "HTTP 429", retryAfter: nil),
            status: .creating,
            keepsIntentStamps: false,
            backsOff: true,
            error: "DigitalOcean did not take the create (HTTP 429)"
        ),
        Case(
            testDescription: "unknown (5xx, timeout) → back off and keep the stamps: the droplet may exist",
            outcome: .unknown(reason: "HTTP 500"),
            status: .creating,
            keepsIntentStamps: true,
            backsOff: true,
            error: "create outcome unknown (HTTP 500)"
        ),
    ]

    @Test(arguments: cases)
    func outcome(_ c: Case) {
        let next = decider.afterCreate(c.outcome, before: before, intent: intent, at: now, jitter: 0.5)
        #expect(next.status == c.status)
        #expect(next.dropletID == c.dropletID)
        #expect(next.createAttempts == 3, "every send is counted")
        if c.keepsIntentStamps {
            #expect(next.createAttemptedAt == intent.createAttemptedAt)
            // An answered or uncertain create could reach DigitalOcean no later than it ended (now).
            let reachable = intent.createReachableUntil.map { min($0, now) }
            #expect(next.createReachableUntil == reachable)
        } else {
            #expect(next.createAttemptedAt == before.createAttemptedAt)
            #expect(next.createReachableUntil == before.createReachableUntil)
        }
        if c.backsOff {
            #expect(next.transientFailures == 2)
            #expect((next.nextAttemptAt ?? .distantPast) > now)
        } else {
            #expect(next.transientFailures == 0)
            #expect(next.nextAttemptAt == nil)
        }
        if let error = c.error {
            #expect(next.lastError?.hasPrefix(error) == true, "\(next.lastError ?? "nil")")
        } else {
            #expect(next.lastError == nil)
        }
    }

    @Test("withdrawn → the row as it was before the intent, but the recorded attempt stays counted")
    func withdrawn() {
        var expected = before
        expected.createAttempts = intent.createAttempts
        #expect(intent.createAttempts == before.createAttempts + 1)
        #expect(
            decider.afterCreate(.withdrawn(reason: "stale"), before: before, intent: intent, at: now, jitter: 0.5)
                == expected
        )
    }

    @Test("a 429's retry-after wins over a shorter backoff")
    func retryAfterWins() {
        let next = decider.afterCreate(
            .transient(reason: "HTTP 429", retryAfter: .seconds(600)),
            before: before,
            intent: intent,
            at: now,
            jitter: 0
        )
        #expect(next.nextAttemptAt == seconds(600))
    }
}

/// Settle periods count from the last instant a create could have reached DigitalOcean, and
/// absence is believed only from a look that proves it.
@Suite("Settle and absence")
struct SettleAndAbsenceTests {
    @Test(
        "settle counts from the reachable-until instant, not from the intent: a create that waited in the budget stays unsettled"
    )
    func settleFromReachableUntil() {
        // Intent 100 s ago, but the request could still reach DigitalOcean until 50 s ago.
        let r = row(status: .creating, attemptedAt: seconds(-100), reachableUntil: seconds(-50), attempts: 1)
        let plan = decide([r], observe([]))
        #expect(plan.creates.isEmpty)
        #expect(plan.nextWakeUp == seconds(10))
        #expect(decide([r], observe([], listedAt: seconds(11))).creates.count == 1)
    }

    @Test(
        "a row written before reachable-until existed settles from intent + send window + request deadline + settle period"
    )
    func derivedReachableUntil() {
        var r = row(status: .creating, attemptedAt: seconds(-90), attempts: 1)
        r.state.createReachableUntil = nil
        #expect(decide([r], observe([])).nextWakeUp == seconds(5))
        r.state.createAttemptedAt = seconds(-96)
        #expect(decide([r], observe([])).creates.count == 1)
    }

    @Test("a list of several pages proves no absence: a first create waits for a lookup by identity tag")
    func multiPageListNeedsLookup() {
        let r = row(status: .creating)
        let plan = decide([r], observe([], snapshot: false))
        #expect(plan.creates.isEmpty)
        #expect(plan.identityLookups == [r.id])
        #expect(plan.waitingOnCloud)
        #expect(
            decide([r], observe([], snapshot: false, lookedUp: [r.id])).creates.count == 1,
            "a lookup that finds nothing confirms"
        )
    }

    @Test("a droplet that already carries a row's identity before its first attempt is adopted, never duplicated")
    func preexistingIdentityAdopted() throws {
        let r = row(status: .creating)
        for observation in [
            observe([droplet(77, for: 1)]), observe([droplet(77, for: 1)], snapshot: false, lookedUp: [r.id]),
        ] {
            let plan = decide([r], observation)
            #expect(plan.creates.isEmpty)
            #expect(plan.destroys.isEmpty)
            #expect(plan.after(r).dropletID == 77)
            #expect(plan.adoptions == [.adopted(row: r.id, droplet: 77)])
        }
    }

    @Test("a deletion is marked deleted only when a look proves the droplet absent")
    func deletedNeedsProof() {
        let r = row(status: .deleting, deleteRequested: true)
        let unproven = decide([r], observe([], snapshot: false))
        #expect(unproven.after(r).status == .deleting)
        #expect(unproven.identityLookups == [r.id])
        #expect(decide([r], observe([], snapshot: false, lookedUp: [r.id])).after(r).status == .deleted)
        #expect(decide([r], observe([])).after(r).status == .deleted)
    }

    @Test("an active row with no droplet fails only on a view that proves it has none")
    func noDropletNeedsProof() {
        let r = row(status: .active, ipv4: ipv4)
        #expect(decide([r], observe([], snapshot: false)).updates.isEmpty)
        #expect(decide([r], observe([])).after(r).status == .failed)
    }
}
