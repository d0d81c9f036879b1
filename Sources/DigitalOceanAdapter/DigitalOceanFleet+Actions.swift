import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Reconciler

// Live changes over the DigitalOcean API client: droplet actions (rename, power off, resize, power
// on, backups, shutdown), tag requests, and project assignments.

extension DigitalOceanFleet {
    public func problem(with action: DropletActionOrder) -> String? {
        Self.problem(with: action)
    }

    /// The client's own validation of the request an action makes: nil when it may be sent.
    public static func problem(with action: DropletActionOrder) -> String? {
        do {
            switch action.kind {
            case .tag(let tag), .untag(let tag): try DropletCreateRequest.validateTag(tag)
            default: try Self.request(for: action.kind).validate()
            }
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
        if case .tag(let tag) = action.kind {
            return try await self.tag(action.dropletID, with: tag, clearance: clearance, lastCheck: lastCheck)
        }
        do {
            switch action.kind {
            case .untag(let tag):
                let requestID = try await client.untagResources(
                    tag: tag,
                    dropletIDs: [action.dropletID],
                    clearance: clearance
                )
                return AcceptedAction(actionID: nil, requestID: requestID)
            case .tag:
                preconditionFailure("sent above")
            default:
                break
            }
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

    /// A tag request. A tag must exist before a droplet can carry it: one DigitalOcean does not
    /// know (404) is made after the request, not before it (the request leaves inside its
    /// intent's send window), and the step is tried again.
    private func tag(
        _ dropletID: Int64,
        with tag: String,
        clearance: SendClearance,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws -> AcceptedAction {
        do {
            let requestID = try await client.tagResources(tag: tag, dropletIDs: [dropletID], clearance: clearance)
            return AcceptedAction(actionID: nil, requestID: requestID)
        } catch  where error.code == .notFound {
            do {
                // Sent on a permit of its own, and only while the caller may still send.
                let permit = try await client.permit(priority: .mutation)
                try await client.createTag(name: tag, clearance: SendClearance(permit: permit, lastCheck: lastCheck))
            } catch {
                throw failure(error)
            }
            throw CloudFailure(
                kind: .transient,
                message:
                    "tag \(tag) did not exist at DigitalOcean; it was made, and the droplet is tagged on the next try",
                requestID: error.requestID
            )
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

    /// The droplet action a step sends; tags are tag requests, not actions (see `perform`).
    static func request(for kind: DropletActionKind) -> DropletActionRequest {
        switch kind {
        case .rename(let name): .rename(name: name)
        case .powerOff: .powerOff
        case .resize(let size, let disk): .resize(size: size, disk: disk)
        case .powerOn: .powerOn
        case .backups(let on): on ? .enableBackups : .disableBackups
        case .shutdown: .shutdown
        case .tag, .untag: preconditionFailure("a tag request is no droplet action: \(kind)")
        }
    }

    public func assign(
        dropletIDs: [Int64],
        toProject projectID: String,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws {
        let clearance = SendClearance(permit: Self.budgetPermit(permit), lastCheck: lastCheck)
        do {
            try await client.assignResources(
                projectID: projectID,
                urns: dropletIDs.map(DigitalOceanClient.dropletURN),
                clearance: clearance
            )
        } catch {
            throw failure(error)
        }
    }
}
