import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Reconciler

// Droplet actions (rename, power off, resize, power on) over the DigitalOcean API client.

extension DigitalOceanFleet {
    public func problem(with action: DropletActionOrder) -> String? {
        Self.problem(with: action)
    }

    /// The client's own validation of the request an action makes: nil when it may be sent.
    public static func problem(with action: DropletActionOrder) -> String? {
        do {
            try Self.request(for: action.kind).validate()
            return nil
        } catch {
            return error.message
        }
    }

    public func perform(
        _ action: DropletActionOrder,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws -> AcceptedAction {
        let clearance = SendClearance(permit: Self.budgetPermit(permit), lastCheck: lastCheck)
        do {
            let accepted = try await client.performDropletAction(
                dropletID: action.dropletID,
                Self.request(for: action.kind),
                clearance: clearance
            )
            return AcceptedAction(actionID: accepted.action.id, requestID: accepted.requestID)
        } catch {
            throw failure(error)
        }
    }

    public func progress(ofAction id: Int64) async throws -> ActionProgress {
        do {
            return Self.progress(of: try await client.action(id: id))
        } catch {
            throw failure(error)
        }
    }

    public func actions(ofDroplet id: Int64) async throws -> [ObservedAction] {
        do {
            return try await client.dropletActions(dropletID: id).map { action in
                ObservedAction(
                    id: action.id,
                    type: action.type,
                    progress: Self.progress(of: action),
                    startedAt: action.startedAt
                )
            }
        } catch {
            throw failure(error)
        }
    }

    static func progress(of action: DropletAction) -> ActionProgress {
        switch action.status {
        case .completed: .completed
        case .errored: .errored
        default: .inProgress
        }
    }

    static func request(for kind: DropletActionKind) -> DropletActionRequest {
        switch kind {
        case .rename(let name): .rename(name: name)
        case .powerOff: .powerOff
        case .resize(let size, let disk): .resize(size: size, disk: disk)
        case .powerOn: .powerOn
        }
    }
}
