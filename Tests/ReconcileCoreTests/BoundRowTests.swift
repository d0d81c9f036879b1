import Foundation
import ReconcileCore
import Testing

/// Rows that are not asked to be deleted, against what the list shows for their droplet.
@Suite("Rows following their droplet")
struct BoundRowTests {
    /// The statuses in which a row follows its droplet.
    static let following: [ServerStatus] = [.creating, .provisioning, .initializing, .active]

    /// A row in `status` as the daemon would have left it, with a stale error and transient
    /// failures so that the tests can see them cleared. A creating row's create was sent five
    /// minutes ago with an unknown outcome (so its droplet shows up only through the identity tag);
    /// the others record droplet 100.
    static func subject(_ status: ServerStatus) -> ServerRecord {
        switch status {
        case .creating:
            row(
                status: .creating,
                lastError: "create outcome unknown (503); checking before retrying",
                attemptedAt: seconds(-300),
                attempts: 1,
                failures: 1,
                nextAttemptAt: seconds(-200)
            )
        case .active:
            row(status: .active, dropletID: 100, ipv4: "198.51.100.1", attemptedAt: seconds(-900), attempts: 1)
        default:
            row(
                status: status,
                dropletID: 100,
                lastError: "GET droplet 100: 503",
                attemptedAt: seconds(-600),
                attempts: 1,
                failures: 2,
                nextAttemptAt: seconds(-10)
            )
        }
    }

    @Test(
        "new droplet → provisioning with the droplet id, error and backoff cleared; a row already up on it stays up (an older look)",
        arguments: following
    )
    func newDroplet(status: ServerStatus) {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1, status: .new, ipv4: nil, ipv6: nil)]))
        let after = plan.after(r)
        #expect(after.status == (status.isUp ? status : .provisioning))
        #expect(after.dropletID == 100)
        #expect(after.lastError == nil)
        #expect(after.transientFailures == 0)
        #expect(after.nextAttemptAt == nil)
        #expect(after.createAttemptedAt == r.state.createAttemptedAt, "the create intent is history, kept")
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty)
        #expect(plan.waitingOnCloud == !status.isUp)
        #expect(plan.orphanIDs.isEmpty)
        #expect(plan.adoptions == (status == .creating ? [.adopted(row: r.id, droplet: 100)] : []))
    }

    @Test("active droplet with addresses → active (initializing skipped), addresses recorded", arguments: following)
    func activeWithAddresses(status: ServerStatus) throws {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1, status: .active)]))
        let after = try #require(plan.written(r))
        #expect(after.status == .active)
        #expect(after.dropletID == 100)
        #expect(after.ipv4 == ipv4)
        #expect(after.ipv6 == ipv6)
        #expect(after.lastError == nil)
        #expect(after.transientFailures == 0 && after.nextAttemptAt == nil)
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty)
        #expect(!plan.waitingOnCloud)
        #expect(plan.updates.count == 1)
    }

    @Test(
        "active droplet without a public IPv4 → provisioning; a row that is up keeps its status and address",
        arguments: following
    )
    func activeWithoutAddress(status: ServerStatus) {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1, status: .active, ipv4: nil, ipv6: nil)]))
        let after = plan.after(r)
        if status.isUp {
            #expect(after.status == status, "an address missing from one list must not take a server out of service")
            #expect(after.ipv4 == r.state.ipv4)
            if status == .active { #expect(plan.updates.isEmpty) }
            #expect(!plan.waitingOnCloud)
        } else {
            #expect(after.status == .provisioning)
            #expect(after.dropletID == 100)
            #expect(after.lastError == nil)
            #expect(plan.waitingOnCloud)
        }
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty)
    }

    @Test("powered-off droplet → row keeps its droplet and status; its drift says it is off", arguments: following)
    func poweredOff(status: ServerStatus) throws {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1, status: .off)]))
        let after = try #require(plan.written(r))
        #expect(after.status == (status == .creating ? .provisioning : status))
        #expect(after.dropletID == 100)
        #expect(after.lastError == nil)
        #expect(after.drift?.contains("powered off at DigitalOcean") == true)
        #expect(after.change == nil, "not powered on behind the operator's back")
        #expect(after.ipv4 == r.state.ipv4, "addresses are not touched while off")
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty)
    }

    @Test("archived droplet → row does not advance, lastError says so", arguments: following)
    func archived(status: ServerStatus) throws {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1, status: .archive)]))
        let after = try #require(plan.written(r))
        #expect(after.status == (status == .creating ? .provisioning : status))
        #expect(after.status != .active || status == .active)
        #expect(after.dropletID == 100)
        #expect(after.lastError?.contains("archived") == true)
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty)
    }

    @Test("droplet in an unknown status → row does not advance and keeps polling", arguments: following)
    func unknownStatus(status: ServerStatus) {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1, status: DropletStatus("migrating"))]))
        let after = plan.after(r)
        #expect(after.status == (status == .creating ? .provisioning : status))
        #expect(after.dropletID == 100)
        #expect(after.lastError == r.state.lastError)
        #expect(plan.waitingOnCloud)
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty)
    }

    /// The statuses of a row that has seen its droplet active (or, creating, records one it was
    /// given): a 404 then is an out-of-band destroy, not a failed placement (PlacementTests).
    static let seenActive = following.filter { $0 != .provisioning }

    @Test("recorded droplet answered 404 → failed, saying what vanished and what to do", arguments: seenActive)
    func goneVia404(status: ServerStatus) throws {
        var r = Self.subject(status)
        r.state.dropletID = 100
        let plan = decide([r], observe([], gone: [100]))
        let after = try #require(plan.written(r))
        #expect(after.status == .failed)
        #expect(after.dropletID == 100, "the row keeps the id as evidence")
        let message = try #require(after.lastError)
        #expect(message.contains("100") && message.contains("404") && message.contains("delete_requested_at"))
        #expect(plan.creates.isEmpty, "a vanished droplet is never silently replaced")
        #expect(plan.destroys.isEmpty)
    }

    @Test("a stale list still showing a droplet that answered 404 → the 404 wins", arguments: seenActive)
    func goneWinsOverStaleList(status: ServerStatus) {
        var r = Self.subject(status)
        r.state.dropletID = 100
        let plan = decide([r], observe([droplet(100, for: 1, status: .active)], gone: [100]))
        #expect(plan.after(r).status == .failed)
        #expect(plan.orphanIDs.isEmpty)
    }

    @Test(
        "recorded droplet neither listed nor fetched → unknown, not gone: no change, keep polling",
        arguments: [ServerStatus.provisioning, .initializing, .active]
    )
    func recordedButUnseen(status: ServerStatus) {
        let r = Self.subject(status)
        let plan = decide([r], observe([]))
        #expect(plan.actions.isEmpty)
        #expect(plan.waitingOnCloud)
    }

    @Test("recorded droplet unknown while another carries the identity → no rebinding, no duplicate destroyed")
    func recordedUnknownWithIdentityDroplet() {
        let r = Self.subject(.active)
        let plan = decide([r], observe([droplet(101, for: 1, createdAt: seconds(-3_000))]))
        #expect(plan.actions.isEmpty, "droplet 100 may still be the one to keep")
    }

    @Test("recorded droplet gone but another carries the identity → the row rebinds to it (adopted)")
    func rebindAfterGone() throws {
        let r = Self.subject(.provisioning)
        let plan = decide([r], observe([droplet(101, for: 1, status: .active)], gone: [100]))
        let after = try #require(plan.written(r))
        #expect(after.status == .active)
        #expect(after.dropletID == 101)
        #expect(plan.adoptions == [.adopted(row: r.id, droplet: 101)])
    }

    @Test(
        "provisioning/active row that records no droplet and has none → failed, nothing created",
        arguments: [ServerStatus.provisioning, .initializing, .active]
    )
    func noDropletAtAll(status: ServerStatus) throws {
        let r = row(status: status, attemptedAt: seconds(-900), attempts: 1)
        let plan = decide([r], observe([]))
        let after = try #require(plan.written(r))
        #expect(after.status == .failed)
        #expect(after.lastError?.contains(status.rawValue) == true)
        #expect(plan.creates.isEmpty)
    }

    @Test("a status change is one compare-and-set update against the row's revision")
    func updateShape() throws {
        let r = Self.subject(.provisioning)
        let plan = decide([r], observe([droplet(100, for: 1, status: .active)]))
        let update = try #require(plan.updates.first)
        #expect(plan.updates.count == 1)
        #expect(update.row == r.id)
        #expect(update.expectedRevision == r.revision)
        #expect(update.from == r.state)
        #expect(update.to != update.from)
    }
}

/// Droplets created before this daemon, known to a row only through its recorded id.
@Suite("Adoption by recorded id")
struct AdoptionTests {
    @Test(
        "legacy creating row with a recorded, untagged droplet → adopted, status follows the droplet",
        arguments: [DropletStatus.new, .active]
    )
    func legacyCreatingRow(dropletStatus: DropletStatus) throws {
        let r = row(status: .creating, dropletID: 555)
        let legacy = droplet(555, for: nil, status: dropletStatus, fleet: false)
        let plan = decide([r], observe([legacy]))
        let after = try #require(plan.written(r))
        #expect(after.status == (dropletStatus == .active ? .active : .provisioning))
        #expect(after.dropletID == 555)
        #expect(plan.adoptions == [.adopted(row: r.id, droplet: 555)])
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty && plan.orphanIDs.isEmpty)
    }

    @Test("legacy active row with a recorded untagged droplet → followed silently, never an orphan")
    func legacyActiveRow() {
        let r = row(status: .active, dropletID: 555, ipv4: ipv4, ipv6: ipv6)
        let plan = decide([r], observe([droplet(555, for: nil, fleet: false, name: r.name)]))
        #expect(plan.actions.isEmpty)
    }

    @Test("legacy fleet droplet without identity tag, recorded by a row → bound, not an orphan")
    func legacyFleetDroplet() {
        let r = row(status: .provisioning, dropletID: 556)
        let plan = decide([r], observe([droplet(556, for: nil, status: .active)]))
        #expect(plan.after(r).status == .active)
        #expect(plan.orphanIDs.isEmpty)
        #expect(plan.destroys.isEmpty)
    }

    @Test("a creating row whose recorded id came from its own create (intent recorded) is not 'adopted'")
    func ownCreateIsNotAdoption() {
        let r = row(status: .creating, dropletID: 100, attemptedAt: seconds(-20), attempts: 1)
        let plan = decide([r], observe([droplet(100, for: 1, status: .new)]))
        #expect(plan.after(r).status == .provisioning)
        #expect(plan.adoptions.isEmpty)
    }

    @Test("an untagged droplet carrying a row's identity tag but not recorded is ignored")
    func identityWithoutFleetTagIsNotBound() {
        let r = row(status: .creating)
        let stranger = droplet(900, for: 1, fleet: false)
        let plan = decide([r], observe([stranger]))
        #expect(plan.updates.isEmpty)
        #expect(plan.creates.count == 1, "only the fleet tag or a recorded id binds a droplet")
        #expect(plan.destroys.isEmpty && plan.orphanIDs.isEmpty)
    }
}
