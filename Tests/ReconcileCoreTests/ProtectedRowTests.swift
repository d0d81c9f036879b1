import Foundation
import ReconcileCore
import Testing

/// `servers.protected`: a brake on one server's deletion (issue 25).
@Suite("Protected rows")
struct ProtectedRowTests {
    static func protectedRow(status: ServerStatus = .active) -> ServerRecord {
        var r = row(
            status: status,
            dropletID: 100,
            ipv4: "198.51.100.1",
            attemptedAt: seconds(-900),
            deleteRequested: true
        )
        r.isProtected = true
        return r
    }

    @Test("deletion requested on a protected row: nothing destroyed, the status kept, the reason written once")
    func refused() throws {
        let r = Self.protectedRow()
        let observation = observe([droplet(100, for: 1)])
        let plan = decide([r], observation)
        #expect(plan.destroys.isEmpty)
        let after = try #require(plan.written(r))
        #expect(after.status == .active)
        #expect(after.lastError == DecisionMessages.protectedFromDeletion)
        var again = r
        again.state = after
        #expect(decide([again], observation).written(again) == nil, "the reason is written once, not every pass")
    }

    @Test("unprotected, the same row is destroyed as asked")
    func unprotected() {
        var r = Self.protectedRow()
        r.isProtected = false
        #expect(decide([r], observe([droplet(100, for: 1)])).destroys.map(\.dropletID) == [100])
    }

    @Test("a protected row whose droplet is already gone is simply deleted: there is nothing to protect")
    func nothingLeftToProtect() {
        let r = Self.protectedRow()
        #expect(decide([r], observe([], gone: [100])).after(r).status == .deleted)
    }

    @Test("a destroy decided before the row was protected is withdrawn at its last look")
    func withdrawnAtTheLastLook() {
        let r = Self.protectedRow()
        let reason = DestroyReason.deleteRequested(row: r.id)
        #expect(reason.withdrawal(of: 100, claimants: [r]) == "the row is protected")
        var open = r
        open.isProtected = false
        #expect(reason.withdrawal(of: 100, claimants: [open]) == nil)
    }
}
