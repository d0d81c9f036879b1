import Foundation
import ReconcileCore
import Testing

/// The droplet a row asks for beyond name, region, size and image: its columns over the
/// configuration's defaults, what a create carries, and what changes in place or shows as drift.
@Suite("Droplet specification")
struct DropletSpecificationTests {
    static let vpcNYC = "5a4981aa-9653-4bd1-bef5-d6bff52042e4"
    static let vpcOther = "0d3176ad-41e0-4021-b831-0c5c45c60959"

    static func configuration(_ change: (inout DropletDefaults) -> Void = { _ in }) -> DecisionConfiguration {
        var c = DecisionConfiguration()
        change(&c.droplets)
        return c
    }

    static func creating(_ options: DropletOptions? = nil) -> ServerRecord {
        var r = row(1)
        r.options = options
        return r
    }

    static func order(_ plan: Plan) throws -> CreateOrder {
        try #require(plan.creates.first).order
    }

    // MARK: What a create carries

    @Test("a row without options gets the configuration's keys, VPC of its region, tags and options")
    func defaultsApply() throws {
        let c = Self.configuration {
            $0.sshKeys = ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa", "512190"]
            $0.vpcs = ["nyc3": Self.vpcNYC, "sfo3": Self.vpcOther]
            $0.tags = ["env:prod", "web"]
            $0.backups = true
            $0.withDropletAgent = false
            $0.projectID = "4e1bfbc3-dc3e-41f2-a18f-1b4d7ba71679"
        }
        let order = try Self.order(decide([Self.creating()], observe([]), configuration: c))
        #expect(order.specification.sshKeys == ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa", "512190"])
        #expect(order.specification.vpcUUID == Self.vpcNYC, "the row is in nyc3")
        #expect(order.tags == [FleetTags.fleet, FleetTags.identity(for: rowID(1)), "env:prod", "web"])
        #expect(order.specification.ipv6 && order.specification.monitoring && order.specification.backups)
        #expect(order.specification.withDropletAgent == false)
        #expect(order.specification.projectID == "4e1bfbc3-dc3e-41f2-a18f-1b4d7ba71679")
    }

    @Test("a row's columns replace the defaults, field by field; NULL keeps the default")
    func rowOverrides() throws {
        let c = Self.configuration {
            $0.sshKeys = ["512190"]
            $0.tags = ["env:prod"]
        }
        let options = DropletOptions(
            sshKeys: [],
            vpcUUID: Self.vpcOther,
            tags: ["db", "db", "env:prod"],
            ipv6: false,
            backups: true
        )
        let order = try Self.order(decide([Self.creating(options)], observe([]), configuration: c))
        #expect(order.specification.sshKeys.isEmpty, "an empty list is a choice: no keys")
        #expect(order.specification.vpcUUID == Self.vpcOther)
        #expect(order.specification.tags == ["db", "env:prod"], "sorted, without duplicates")
        #expect(!order.specification.ipv6)
        #expect(order.specification.monitoring, "NULL: the default")
        #expect(order.specification.backups)
    }

    @Test(
        "a tag of the daemon's own namespace is refused before anything is sent",
        arguments: [
            "citrus-host", "citrus-server:00000000-0000-4000-8000-000000000002",
        ]
    )
    func ownTagsRefused(tag: String) throws {
        let order = try Self.order(decide([Self.creating(DropletOptions(tags: [tag]))], observe([])))
        let problem = try #require(order.specification.problem)
        #expect(problem.contains(tag) && problem.contains("daemon's own"))
    }

    @Test("the create's intent records what the droplet is made with")
    func intentRecords() throws {
        let c = Self.configuration { $0.sshKeys = ["512190"] }
        let decider = Decider(configuration: c)
        let r = Self.creating()
        let order = try Self.order(decide([r], observe([]), configuration: c))
        let intent = decider.intent(from: r.state, at: now, order: order)
        #expect(intent.createdWith == order.specification.creationOnly)
        #expect(intent.createdWith?.contains("ssh_keys [512190]") == true)
    }

    // MARK: In place

    static func live(options: DropletOptions? = nil, createdWith: String? = nil) -> ServerRecord {
        var r = LiveChangeTests.live()
        r.options = options
        r.state.createdWith = createdWith
        return r
    }

    static func droplet(tags: [String] = [], backups: Bool? = false, vpc: String? = nil) -> ObservedDroplet {
        var d = LiveChangeTests.fleetDroplet()
        d.otherTags = tags
        d.backups = backups
        d.vpcUUID = vpc
        return d
    }

    @Test("a tag the row asks for is added in place, one request at a time")
    func tagAdded() throws {
        let r = Self.live(options: DropletOptions(tags: ["web", "env:prod"]))
        let plan = decide([r], observe([Self.droplet(tags: ["web"])]))
        let send = try #require(LiveChangeTests.sent(plan).first)
        #expect(send.order.kind == .tag("env:prod"))
        #expect(send.state.change?.goal == .tag("env:prod"))
    }

    @Test("a tag the row no longer asks for is removed in place")
    func tagRemoved() throws {
        let r = Self.live(options: DropletOptions(tags: []))
        let plan = decide([r], observe([Self.droplet(tags: ["old"])]))
        #expect(LiveChangeTests.sent(plan).first?.order.kind == .untag("old"))
    }

    @Test("a tag request carried out in its answer ends the change; the next pass on the tagged droplet sends nothing")
    func tagCarriedOut() throws {
        let r = Self.live(options: DropletOptions(tags: ["web"]))
        let decider = Decider()
        let send = try #require(LiveChangeTests.sent(decide([r], observe([Self.droplet()]))).first)
        let intent = decider.actionIntent(from: send.state, at: now)
        let after = decider.afterAction(.carriedOut, intent: intent, at: now, jitter: 0)
        #expect(after.change == nil && after.lastError == nil)
        var next = r
        next.state = after
        let plan = decide([next], observe([Self.droplet(tags: ["web"])]))
        #expect(LiveChangeTests.sent(plan).isEmpty)
    }

    @Test("a refused tag is recorded and shown as drift, and not sent again while the row asks for it")
    func tagRefused() throws {
        let r = Self.live(options: DropletOptions(tags: ["web"]))
        let decider = Decider()
        let send = try #require(LiveChangeTests.sent(decide([r], observe([Self.droplet()]))).first)
        let after = decider.afterAction(
            .refused(reason: "422: tag limit"),
            intent: decider.actionIntent(from: send.state, at: now),
            at: now,
            jitter: 0
        )
        #expect(
            after.refused
                == RefusedChange(column: "tags", value: "+web", reason: "the tag web was refused: 422: tag limit")
        )
        var next = r
        next.state = after
        let plan = decide([next], observe([Self.droplet()]))
        #expect(LiveChangeTests.sent(plan).isEmpty)
        let drift = try #require(plan.updates.first?.to.drift)
        #expect(drift.contains("tag web was refused"))
    }

    @Test("backups follow the row: switched on in place by a droplet action")
    func backupsOn() throws {
        let r = Self.live(options: DropletOptions(backups: true))
        let plan = decide([r], observe([Self.droplet(backups: false)]))
        #expect(LiveChangeTests.sent(plan).first?.order.kind == .backups(on: true))
    }

    @Test("a droplet whose answer does not say whether backups are on is left alone")
    func backupsUnknown() {
        let r = Self.live(options: DropletOptions(backups: true))
        #expect(LiveChangeTests.sent(decide([r], observe([Self.droplet(backups: nil)]))).isEmpty)
    }

    @Test("a converged droplet with the configuration's tags and backups sends nothing and records no drift")
    func converged() {
        let c = Self.configuration {
            $0.tags = ["web"]
            $0.backups = true
        }
        let r = Self.live()
        let plan = decide([r], observe([Self.droplet(tags: ["web"], backups: true)]), configuration: c)
        #expect(LiveChangeTests.sent(plan).isEmpty)
        #expect(plan.updates.allSatisfy { $0.to.drift == nil })
    }

    // MARK: Drift

    @Test("a droplet in another VPC than the row asks is drift, never acted on")
    func vpcDrift() throws {
        let r = Self.live(options: DropletOptions(vpcUUID: Self.vpcNYC))
        let plan = decide([r], observe([Self.droplet(vpc: Self.vpcOther)]))
        #expect(LiveChangeTests.sent(plan).isEmpty)
        let drift = try #require(plan.updates.first?.to.drift)
        #expect(drift.contains("vpc: the row asks VPC \(Self.vpcNYC), the droplet is in \(Self.vpcOther)"))
    }

    @Test("keys changed after the droplet was made are drift: they apply only to new droplets")
    func keysDrift() throws {
        let made = DropletSpecification(options: nil, defaults: DropletDefaults(sshKeys: ["1"]), region: "nyc3")
        let r = Self.live(options: DropletOptions(sshKeys: ["2"]), createdWith: made.creationOnly)
        let plan = decide([r], observe([Self.droplet()]))
        #expect(LiveChangeTests.sent(plan).isEmpty)
        let drift = try #require(plan.updates.first?.to.drift)
        #expect(drift.contains("made with: ssh_keys [1]") && drift.contains("now ask ssh_keys [2]"))
    }

    @Test("a droplet made before what it was made with was recorded is not drift for that")
    func unrecordedIsNoDrift() {
        let r = Self.live(options: DropletOptions(sshKeys: ["2"]))
        let plan = decide([r], observe([Self.droplet()]))
        #expect(plan.updates.allSatisfy { $0.to.drift == nil })
    }
}

extension DropletSpecificationTests {
    @Test("a live row asking for a tag of the daemon's namespace never tags its droplet: drift says why")
    func ownTagOnLiveRow() throws {
        let r = Self.live(options: DropletOptions(tags: ["citrus-server:00000000-0000-4000-8000-000000000002"]))
        let plan = decide([r], observe([Self.droplet()]))
        #expect(LiveChangeTests.sent(plan).isEmpty)
        let drift = try #require(plan.updates.first?.to.drift)
        #expect(drift.contains("daemon's own"))
    }
}

extension DropletSpecificationTests {
    @Test(
        "a droplet adopted without the row's tags is bound by a write of its own; the tag is sent by the next decision, not with the binding"
    )
    func adoptionBindsBeforeTagging() throws {
        let c = Self.configuration { $0.tags = ["env:prod"] }
        let r = row(1)  // creating, never attempted: a row moved in, its droplet made elsewhere
        let plan = decide([r], observe([ReconcileCoreTests.droplet(100, for: 1)]), configuration: c)
        #expect(plan.adoptions == [.adopted(row: r.id, droplet: 100)])
        #expect(LiveChangeTests.sent(plan).isEmpty, "no step carries the binding")
        #expect(plan.updates.first { $0.row == r.id }?.to.change == nil, "nor is the change recorded unsent")
        let bound = try #require(plan.updates.first { $0.row == r.id }?.to)
        #expect(bound.dropletID == 100 && bound.status == .active)

        var next = r
        next.state = bound
        next.revision += 1
        let after = decide([next], observe([ReconcileCoreTests.droplet(100, for: 1)]), configuration: c)
        #expect(LiveChangeTests.sent(after).first?.order.kind == .tag("env:prod"))
    }
}
