import Foundation
import ReconcileCore
import Testing

/// `--shutdown-before-destroy`: a server whose row asked for deletion is shut down gracefully
/// first, and its droplet destroyed once it is off, or once the wait after the request is over.
@Suite("Shutdown before destroy")
struct ShutdownBeforeDestroyTests {
    /// Deletion asked 30 s ago; the wait is `wait`.
    static func configuration(wait: Duration? = .seconds(120)) -> DecisionConfiguration {
        var c = DecisionConfiguration()
        c.shutdownBeforeDestroy = wait
        return c
    }

    static let deleting = row(1, status: .active, dropletID: 100, ipv4: ipv4, deleteRequested: true)

    static func shutdowns(_ plan: Plan) -> [DropletActionOrder] {
        plan.actions.compactMap { if case .dropletAction(let order, _, _, _) = $0 { order } else { nil } }
    }

    @Test("an active server is shut down first, not destroyed")
    func shutsDownFirst() throws {
        let plan = decide([Self.deleting], observe([droplet(100, for: 1)]), configuration: Self.configuration())
        #expect(plan.destroys.isEmpty)
        #expect(Self.shutdowns(plan) == [DropletActionOrder(rowID: rowID(1), dropletID: 100, kind: .shutdown)])
        #expect(plan.nextWakeUp == seconds(90), "the wait ends 120 s after the request, 30 s ago")
    }

    @Test("while the shutdown runs, nothing is sent; once the droplet is off it is destroyed")
    func waitsThenDestroys() throws {
        var r = Self.deleting
        r.state.status = .deleting
        r.state.change = LiveChange(goal: .shutDown, actionID: 9, sentAt: seconds(-20))
        let running = decide([r], observe([droplet(100, for: 1)]), configuration: Self.configuration())
        #expect(running.destroys.isEmpty && Self.shutdowns(running).isEmpty)
        let off = decide([r], observe([droplet(100, for: 1, status: .off)]), configuration: Self.configuration())
        #expect(off.destroys.map(\.dropletID) == [100])
    }

    @Test("a server still up when the wait is over is destroyed anyway")
    func boundedWait() {
        var r = Self.deleting
        r.state.change = LiveChange(goal: .shutDown, actionID: 9, sentAt: seconds(-20))
        let plan = decide([r], observe([droplet(100, for: 1)]), configuration: Self.configuration(wait: .seconds(10)))
        #expect(plan.destroys.map(\.dropletID) == [100])
    }

    @Test("without the setting a deletion destroys at once")
    func offByDefault() {
        let plan = decide(
            [Self.deleting],
            observe([droplet(100, for: 1)]),
            configuration: Self.configuration(wait: nil)
        )
        #expect(plan.destroys.map(\.dropletID) == [100])
        #expect(Self.shutdowns(plan).isEmpty)
    }

    @Test("a protected row is neither shut down nor destroyed")
    func protectedRow() {
        var r = Self.deleting
        r.isProtected = true
        let plan = decide([r], observe([droplet(100, for: 1)]), configuration: Self.configuration())
        #expect(plan.destroys.isEmpty && Self.shutdowns(plan).isEmpty)
    }
}
