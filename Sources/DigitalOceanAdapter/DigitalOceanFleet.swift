import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Reconciler
import Timekeeping

/// `DropletCloud` over the DigitalOcean API client.
public struct DigitalOceanFleet: DropletCloud {
    public let client: DigitalOceanClient
    let clock: any DaemonClock

    public init(client: DigitalOceanClient, clock: any DaemonClock = SystemClock()) {
        self.client = client
        self.clock = clock
    }

    /// A page's droplets are reduced to the decision's facts at once: at 50,000 droplets the full
    /// models (networks, kernels, features, ...) would be most of the daemon's memory.
    public func listFleetPage(_ cursor: FleetListCursor) async throws -> FleetPage {
        do {
            let page = try await client.dropletPage(tag: FleetTags.fleet, number: cursor.page, link: cursor.link)
            return FleetPage(
                droplets: page.droplets.map(Self.observed),
                next: page.next.map { FleetListCursor(page: cursor.page + 1, link: $0) },
                total: page.total
            )
        } catch {
            throw failure(error)
        }
    }

    public func droplets(identity row: UUID) async throws -> [ObservedDroplet] {
        do {
            return try await client.listDroplets(tag: FleetTags.identity(for: row)).map(Self.observed)
        } catch {
            throw failure(error)
        }
    }

    public func droplet(id: Int64) async throws -> ObservedDroplet? {
        do {
            return Self.observed(try await client.droplet(id: id))
        } catch  where error.code == .notFound {
            return nil
        } catch {
            throw failure(error)
        }
    }

    public func problem(with order: CreateOrder) -> String? {
        Self.problem(with: order)
    }

    /// The client's own validation of the request an order makes: nil when it may be sent.
    public static func problem(with order: CreateOrder) -> String? {
        do {
            try Self.request(for: order).validate()
            if let projectID = order.specification.projectID { try DigitalOceanClient.validateProjectID(projectID) }
            return nil
        } catch {
            return error.message
        }
    }

    /// The client's rate budget's permit, as the loop holds it.
    struct BudgetPermit: SendPermit {
        let permit: RateBudget.Permit
    }

    public func permit() async throws -> any SendPermit {
        do {
            return BudgetPermit(permit: try await client.permit(priority: .mutation))
        } catch {
            throw failure(error)
        }
    }

    public func giveBack(_ permit: any SendPermit) async {
        await client.giveBack(Self.budgetPermit(permit))
    }

    /// A permit from this fleet's `permit()`: any other is a wiring error.
    static func budgetPermit(_ permit: any SendPermit) -> RateBudget.Permit {
        guard let held = permit as? BudgetPermit else {
            preconditionFailure("a permit from another cloud: \(type(of: permit))")
        }
        return held.permit
    }

    public func create(
        _ order: CreateOrder,
        userData: UserData?,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws -> AcceptedCreate {
        let clearance = SendClearance(permit: Self.budgetPermit(permit), lastCheck: lastCheck)
        do {
            var request = try Self.request(for: order)
            request.userData = userData?.text
            request.secrets = userData?.secrets ?? []
            let created = try await client.createDroplet(request, clearance: clearance)
            return AcceptedCreate(droplet: Self.observed(created.droplet), requestID: created.requestID)
        } catch {
            throw failure(error)
        }
    }

    public func destroy(
        dropletID: Int64,
        permit: any SendPermit,
        lastCheck: @escaping @Sendable () -> Bool
    ) async throws -> DestroyOutcome {
        let clearance = SendClearance(permit: Self.budgetPermit(permit), lastCheck: lastCheck)
        do {
            switch try await client.deleteDroplet(id: dropletID, clearance: clearance) {
            case .deleted(let requestID): return .destroyed(requestID: requestID)
            case .alreadyGone: return .alreadyGone
            }
        } catch {
            throw failure(error)
        }
    }

    /// The droplet the order asks for: its row's identity tags and extra tags, keys, VPC and
    /// options. A key that is neither an id nor a fingerprint throws a validation error.
    static func request(for order: CreateOrder) throws(DigitalOceanError) -> DropletCreateRequest {
        let specification = order.specification
        var keys: [SSHKeyReference] = []
        for key in specification.sshKeys { keys.append(try SSHKeyReference(parsing: key)) }
        return DropletCreateRequest(
            name: order.name,
            region: order.region,
            size: order.size,
            image: order.image,
            tags: order.tags,
            ipv6: specification.ipv6,
            monitoring: specification.monitoring,
            backups: specification.backups,
            sshKeys: keys,
            vpcUUID: specification.vpcUUID,
            withDropletAgent: specification.withDropletAgent
        )
    }

    static func observed(_ droplet: Droplet) -> ObservedDroplet {
        ObservedDroplet(
            id: droplet.id,
            name: droplet.name,
            status: ReconcileCore.DropletStatus(droplet.status.rawValue),
            tags: droplet.tags,
            createdAt: droplet.createdAt,
            publicIPv4: droplet.publicIPv4,
            publicIPv6: droplet.publicIPv6,
            region: droplet.regionSlug,
            size: droplet.sizeSlug,
            image: droplet.imageSlug,
            imageID: droplet.image.id.map { String($0) },
            vpcUUID: droplet.vpcUUID,
            backups: droplet.features.contains(.backups),
            locked: droplet.locked
        )
    }

    func failure(_ error: DigitalOceanError) -> CloudFailure {
        let kind: CloudFailureKind
        switch error.code {
        case .outcomeUnknown: kind = .outcomeUnknown
        case .withdrawn: kind = .withdrawn
        case .validation, .notFound: kind = .permanent
        // A refused token is the operator's to fix, not the row's: keep retrying, never fail rows.
        default: kind = .transient
        }
        var retryAfter = error.retryAfter
        if retryAfter == nil, let reset = error.rateLimitResetAt {
            retryAfter = .interval(reset.timeIntervalSince(clock.now()))
        }
        // The client caps DigitalOcean's own text at 1 KiB; this bounds the whole line that
        // reaches last_error and the journal, whatever else an error grows to carry.
        return CloudFailure(
            kind: kind,
            message: ErrorText.capped(error.description, limit: 2 * ErrorText.limit),
            requestID: error.requestID,
            retryAfter: retryAfter
        )
    }
}
