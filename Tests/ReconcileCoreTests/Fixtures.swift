import Foundation
import ReconcileCore

/// The clock every test reads.
let now = Date(timeIntervalSince1970: 1_700_000_000)

func seconds(_ s: Double) -> Date { now.addingTimeInterval(s) }

/// A stable row id, readable in failure output: row 12 is 00000000-0000-4000-8000-000000000012.
func rowID(_ n: Int) -> UUID {
    let digits = String(n)
    return UUID(uuidString: "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - digits.count) + digits)!
}

let ipv4 = "203.0.113.10"
let ipv6 = "2001:db8::10"

func row(
    _ n: Int = 1,
    status: ServerStatus = .creating,
    dropletID: Int64? = nil,
    ipv4: String? = nil,
    ipv6: String? = nil,
    lastError: String? = nil,
    attemptedAt: Date? = nil,
    reachableUntil: Date? = nil,
    attempts: Int = 0,
    failures: Int = 0,
    nextAttemptAt: Date? = nil,
    deleteRequested: Bool = false,
    revision: Int64 = 7
) -> ServerRecord {
    ServerRecord(
        id: rowID(n),
        revision: revision,
        name: "web-\(n)",
        region: "nyc3",
        size: "s-1vcpu-1gb",
        image: "debian-12-x64",
        deleteRequestedAt: deleteRequested ? seconds(-30) : nil,
        createdAt: seconds(-3_600),
        state: DaemonState(
            status: status,
            dropletID: dropletID,
            ipv4: ipv4,
            ipv6: ipv6,
            lastError: lastError,
            // By default the attempt could reach DigitalOcean only at its own instant, so tables
            // read "settle period after the attempt"; tests of the send window set it apart.
            createAttemptedAt: attemptedAt,
            createReachableUntil: reachableUntil ?? attemptedAt,
            createAttempts: attempts,
            transientFailures: failures,
            nextAttemptAt: nextAttemptAt,
            // What a bound row has already recorded of its droplet (see `droplet(_:for:)`).
            observed: dropletID == nil ? nil : DropletFacts(name: "web-\(n)")
        )
    )
}

/// A droplet created for row `n` (fleet and identity tags); `for: nil` leaves out the identity,
/// `fleet: false` the fleet tag.
func droplet(
    _ id: Int64,
    for n: Int?,
    status: DropletStatus = .active,
    ipv4: String? = ipv4,
    ipv6: String? = ipv6,
    fleet: Bool = true,
    createdAt: Date = seconds(-1_800),
    name: String? = nil
) -> ObservedDroplet {
    var tags: [String] = fleet ? [FleetTags.fleet] : []
    if let n { tags.append(FleetTags.identity(for: rowID(n))) }
    return ObservedDroplet(
        id: id,
        name: name ?? "web-\(n ?? 0)",
        status: status,
        tags: tags,
        createdAt: createdAt,
        publicIPv4: ipv4,
        publicIPv6: ipv6
    )
}

/// A look at the fleet; by default a one-page list, which proves absence. `snapshot: false` is a
/// list of several pages, which proves no absence except for the rows in `lookedUp`; `fresh` are
/// the droplets read in this pass (pages of its slice, reads by id).
func observe(
    _ droplets: [ObservedDroplet],
    gone: Set<Int64> = [],
    listedAt: Date = seconds(-1),
    snapshot: Bool = true,
    lookedUp: Set<UUID> = [],
    fresh: Set<Int64> = []
) -> Observation {
    Observation(
        droplets: droplets,
        goneDropletIDs: gone,
        listedAt: listedAt,
        listIsSnapshot: snapshot,
        identitiesLookedUp: lookedUp,
        freshlyRead: fresh
    )
}

func decide(
    _ rows: [ServerRecord],
    _ observation: Observation,
    configuration: DecisionConfiguration = DecisionConfiguration(),
    orphansFirstSeen: [Int64: Date] = [:]
) -> Plan {
    Decider(configuration: configuration).decide(
        rows: rows,
        observation: observation,
        now: now,
        orphansFirstSeen: orphansFirstSeen
    )
}

struct Update: Equatable {
    var row: UUID
    var expectedRevision: Int64
    var from: DaemonState
    var to: DaemonState
}

struct Create: Equatable {
    var order: CreateOrder
    var expectedRevision: Int64
    var state: DaemonState
}

struct Destroy: Equatable, CustomStringConvertible {
    var dropletID: Int64
    var reason: DestroyReason
    var description: String { "destroy \(dropletID) (\(reason))" }
}

extension Plan {
    var updates: [Update] {
        actions.compactMap {
            if case .update(let row, let revision, let from, let to) = $0 {
                Update(row: row, expectedRevision: revision, from: from, to: to)
            } else {
                nil
            }
        }
    }

    var creates: [Create] {
        actions.compactMap {
            if case .create(let order, let revision, let state) = $0 {
                Create(order: order, expectedRevision: revision, state: state)
            } else {
                nil
            }
        }
    }

    var destroys: [Destroy] {
        actions.compactMap {
            if case .destroy(let id, let reason) = $0 { Destroy(dropletID: id, reason: reason) } else { nil }
        }
    }

    var notes: [AuditNote] {
        actions.compactMap { if case .note(let note) = $0 { note } else { nil } }
    }

    var orphanIDs: [Int64] {
        notes.compactMap { if case .orphanSeen(let droplet) = $0 { droplet.id } else { nil } }
    }

    var adoptions: [AuditNote] {
        notes.filter { if case .adopted = $0 { true } else { false } }
    }

    /// The state the plan writes to `row`, or nil when it writes nothing.
    func written(_ row: ServerRecord) -> DaemonState? {
        updates.first { $0.row == row.id }?.to
    }

    /// The state `row` has after the plan's updates are applied.
    func after(_ row: ServerRecord) -> DaemonState {
        written(row) ?? row.state
    }
}

/// What the loop does with a plan's updates: a successful compare-and-set bumps the revision.
func apply(_ plan: Plan, to rows: [ServerRecord]) -> [ServerRecord] {
    var byID: [UUID: Update] = [:]
    for update in plan.updates { byID[update.row] = update }
    return rows.map { row in
        guard let update = byID[row.id] else { return row }
        var next = row
        next.state = update.to
        next.revision += 1
        return next
    }
}
