#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore

// The act layer of a destroy, in the order of every once-only request: a permit from the rate
// budget; the last look (this replica still may act, and the rows that could claim the droplet,
// read again now, do not: `DestroyReason.withdrawal`); then the send, with the lease checked once
// more right before it leaves. A destroy that fails is tried again by a later pass, after its own
// last look.

extension FleetReconciler {
    func destroy(dropletID: Int64, reason: DestroyReason, rows: [UUID: ServerRecord]) async {
        let now = databaseNow()
        if let asked = recentDestroys[dropletID], now < asked.adding(configuration.destroyRepeatInterval) { return }
        guard mayAct() else { return }
        let row: ServerRecord?
        let kind: AuditKind
        let why: String
        switch reason {
        case .deleteRequested(let id):
            row = rows[id]
            kind = .destroyRequested
            why = "deletion was requested for server \(row?.name ?? id.uuidString.lowercased())"
        case let .duplicate(id, kept, keptCreatedAt, duplicateCreatedAt):
            row = rows[id]
            kind = .duplicateResolved
            why =
                "it duplicates droplet \(kept), which server \(row?.name ?? id.uuidString.lowercased()) keeps as the one with history "
                + "(created \(keptCreatedAt.formatted(.iso8601)), this one \(duplicateCreatedAt.formatted(.iso8601)))"
        case .orphan:
            row = nil
            kind = .destroyRequested
            why = "it is an orphan (tagged citrus-host, matching no row) past its grace period"
        }
        func withdrawn(_ because: String) async {
            await audit.emit(
                event(
                    .destroyWithdrawn,
                    row: row,
                    droplet: dropletID,
                    message:
                        "destroy of droplet \(dropletID) withdrawn before it was sent (\(because)); it was decided because \(why)"
                )
            )
        }
        let outcome: DestroyOutcome
        do {
            let permit = try await cloud.permit()
            if let because = await lastLook(at: dropletID, reason: reason) {
                await cloud.giveBack(permit)
                await withdrawn(because)
                return
            }
            // Counted before it leaves, here and durably: a send whose answer is lost may still
            // have destroyed the droplet, and this replica may die before it learns.
            if kind == .destroyRequested {
                let sending = event(
                    .destroySending,
                    row: row,
                    droplet: dropletID,
                    message: "sending the destroy of droplet \(dropletID): \(why)"
                )
                do {
                    try await repository.record(sending)
                } catch {
                    await cloud.giveBack(permit)
                    logger.warning(
                        "destroy of droplet \(dropletID) not sent: the destroy budget's record of it could not be written: \(error)"
                    )
                    return
                }
                audit.journal([sending])
                destroysSent[dropletID] = now
            }
            outcome = try await cloud.destroy(dropletID: dropletID, permit: permit, lastCheck: mayAct)
        } catch let failure as CloudFailure where failure.kind == .withdrawn {
            await withdrawn("this replica no longer may act")
            return
        } catch {
            let failure = error as? CloudFailure ?? CloudFailure(kind: .transient, message: "\(error)")
            await audit.emit(
                event(
                    failure.kind == .permanent ? .failed : .retrying,
                    row: row,
                    droplet: dropletID,
                    requestID: failure.requestID,
                    message: "could not destroy droplet \(dropletID) (\(why)): \(failure.message)"
                )
            )
            return
        }
        recentDestroys[dropletID] = now
        let requestID: String?
        let result: String
        switch outcome {
        case .destroyed(let id):
            requestID = id
            result = "destroying droplet \(dropletID)"
        case .alreadyGone:
            requestID = nil
            result = "droplet \(dropletID) was already gone"
        }
        await audit.emit(
            event(
                kind,
                row: row,
                serverID: row == nil ? nil : row?.id,
                droplet: dropletID,
                requestID: requestID,
                message: "\(result): \(why)"
            )
        )
    }

    /// A destroy's last look, once its permit is held: why it must not go, or nil when it may.
    private func lastLook(at dropletID: Int64, reason: DestroyReason) async -> String? {
        guard mayAct() else { return "this replica no longer may act" }
        let identity: UUID? =
            switch reason {
            case .deleteRequested(let row), .duplicate(let row, _, _, _): row
            case .orphan(let identity): identity
            }
        do {
            let claimants = try await repository.fetchClaimants(of: dropletID, identity: identity)
            return reason.withdrawal(of: dropletID, claimants: claimants)
        } catch {
            return "its row could not be read again: \(error)"
        }
    }
}
