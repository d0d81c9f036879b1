import DigitalOcean
import Foundation
import ReconcileCore
import Reconciler

/// DigitalOcean as the daemon meets it, in virtual time: droplets with their tags and creation
/// times, `new` → `active` after a boot, list lag, offset pagination that shifts under deletions,
/// a shared per-minute limit with 429s, and faults on every request. It also checks the safety
/// invariants at the moment each request takes effect.
final class SimulatedDigitalOcean: @unchecked Sendable {
    struct Droplet {
        var id: Int64
        var name: String
        let tags: [String]
        var createdAt: Date
        /// Lists and tag lookups show it from here on (list lag); GET by id at once.
        var visibleAt: Date
        var activeAt: Date
        var size = "s-1vcpu-512mb-10gb"
        var poweredOff = false
        /// An action is in progress on it (see `SimulatedDigitalOcean+Actions`).
        var locked = false
        /// The row whose identity tag it carries, and whether it carries `citrus-host`: read from
        /// its tags once, when it is made (tags do not change here), not at every look.
        let identity: UUID?
        let inFleet: Bool

        init(id: Int64, name: String, tags: [String], createdAt: Date, visibleAt: Date, activeAt: Date) {
            self.id = id
            self.name = name
            self.tags = tags
            self.createdAt = createdAt
            self.visibleAt = visibleAt
            self.activeAt = activeAt
            identity = tags.lazy.compactMap(FleetTags.row(fromIdentityTag:)).first
            inFleet = tags.contains(FleetTags.fleet)
        }

        func observed(at now: Date) -> ObservedDroplet {
            let active = now >= activeAt
            let number = id % 250
            return ObservedDroplet(
                id: id,
                name: name,
                status: !active ? .new : poweredOff ? .off : .active,
                tags: tags,
                createdAt: createdAt,
                publicIPv4: active ? "203.0.113.\(number)" : nil,
                publicIPv6: active ? "2001:db8::\(number)" : nil,
                region: "sfo3",
                size: size,
                image: "ubuntu-22-04-x64",
                locked: locked || !active
            )
        }
    }

    unowned let world: SimulationWorld
    var droplets: [Int64: Droplet] = [:]
    /// When each destroyed droplet went.
    var destroyedAt: [Int64: Date] = [:]
    /// Droplet actions by id (see `SimulatedDigitalOcean+Actions`).
    var actions: [Int64: SimulatedAction] = [:]
    var nextActionID: Int64 = 900_000
    /// Droplets a daemon sent a power_off to since it last powered them on: the only ones it may
    /// power on (the simulation runs with `--powered-off report`).
    var poweredOffByDaemon: Set<Int64> = []
    private var nextID: Int64 = 100_000
    /// When each request arrived, for the shared per-minute limit.
    private var arrivals: [Date] = []
    let perMinute: Int
    let pageSize: Int

    init(world: SimulationWorld, perMinute: Int, pageSize: Int) {
        self.world = world
        self.perMinute = perMinute
        self.pageSize = pageSize
    }

    var liveDroplets: [Droplet] { droplets.values.sorted { $0.id < $1.id } }

    /// Live droplets carrying `identity`, the fleet tag included (the daemon's to manage).
    func droplets(identity: UUID) -> [Droplet] {
        droplets.values.filter { $0.identity == identity && $0.inFleet }.sorted { $0.id < $1.id }
    }

    /// Counts a request against the token's minute; false when DigitalOcean answers 429.
    func admit() -> Bool {
        let now = world.time.now
        arrivals.removeAll { $0 <= now.addingTimeInterval(-60) }
        guard arrivals.count < perMinute else { return false }
        arrivals.append(now)
        return true
    }

    /// When the oldest request of the minute leaves it (for `retry-after`).
    var minuteResetsIn: TimeInterval {
        guard let first = arrivals.first else { return 1 }
        return max(1, first.addingTimeInterval(60).timeIntervalSince(world.time.now))
    }

    // MARK: Effects

    /// A create takes effect: the droplet exists from now on.
    @discardableResult
    func make(name: String, tags: [String], by who: String) -> Droplet {
        nextID += 1
        let now = world.time.now
        let droplet = Droplet(
            id: nextID,
            name: name,
            tags: tags,
            createdAt: now,
            visibleAt: now.addingTimeInterval(world.faults.listLag()),
            activeAt: now.addingTimeInterval(world.faults.bootTime())
        )
        if let identity = droplet.identity, tags.contains(FleetTags.fleet), who != "world" {
            let existing = droplets(identity: identity)
            if !existing.isEmpty {
                if world.promiseVoided.contains(identity) {
                    world.duplicatesAfterLossyFailover += 1
                    world.trace(
                        "do: a second droplet for \(world.label(identity)), whose intent a lossy failover took back"
                    )
                } else {
                    world.violation(
                        "\(who) created a second droplet \(droplet.id) for \(world.label(identity)) while droplet \(existing.map { String($0.id) }.joined(separator: ", ")) existed"
                            + world.context(of: identity)
                    )
                }
            } else if world.vanished.contains(identity) {
                world.recreatedAfterVanish += 1
                world.trace("do: \(world.label(identity)) gets a droplet again after its droplet vanished")
            }
            world.createsTakenEffect[identity, default: 0] += 1
        }
        droplets[droplet.id] = droplet
        world.trace("do: droplet \(droplet.id) made for \(droplet.identity.map(world.label) ?? "no row") by \(who)")
        return droplet
    }

    /// Checks, as a destroy leaves, that it is one the design allows: a droplet with the fleet
    /// tag, and not the one a live row keeps (the oldest with its identity) nor an orphan.
    func checkDestroy(_ id: Int64, by who: String) {
        guard let droplet = droplets[id] else { return }
        guard droplet.tags.contains(FleetTags.fleet) else {
            world.violation("\(who) destroyed droplet \(id), which has no citrus-host tag")
            return
        }
        guard let identity = droplet.identity else {
            world.violation("\(who) destroyed droplet \(id), which carries no row's identity (an orphan)")
            return
        }
        let row = world.database.rows[identity]
        let oldest = droplets(identity: identity).min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        guard oldest?.id == id else { return }  // a newer duplicate
        if let row, row.state.status != .deleted, row.deleteRequestedAt == nil {
            // An operator who withdrew the deletion less than a second ago may have done so while
            // the request was already leaving: no re-check can close that gap.
            if let withdrawn = world.deletionWithdrawnAt[identity], world.time.now.timeIntervalSince(withdrawn) < 1 {
                world.trace("do: droplet \(id) destroyed by \(who) as its row's deletion was withdrawn")
                return
            }
            world.violation(
                "\(who) destroyed droplet \(id), the one live row \(world.label(identity)) should keep"
                    + (world.deletionWithdrawnAt[identity] != nil ? " (its deletion request was withdrawn)" : "")
            )
        } else if row == nil, !world.goneAskingDeletion.contains(identity) {
            checkOrphanDestroy(droplet, identity: identity, by: who)
        }
    }

    /// An orphan may be destroyed only with `--orphans delete`, and only once it has been one (no
    /// live row with its identity) for the grace period: a droplet whose row was deleted with SQL
    /// a moment ago, or whose create was in flight, is not yet an orphan.
    private func checkOrphanDestroy(_ droplet: Droplet, identity: UUID, by who: String) {
        guard let grace = world.orphanGrace else {
            world.violation("\(who) destroyed droplet \(droplet.id), an orphan, with orphans set to report")
            return
        }
        let orphanSince = max(droplet.createdAt, world.rowGoneAt[identity] ?? droplet.createdAt)
        let age = world.time.now.timeIntervalSince(orphanSince)
        if age < grace {
            world.violation(
                "\(who) destroyed droplet \(droplet.id) of \(world.label(identity)), an orphan for only "
                    + String(format: "%.1f s (grace %.0f s)", age, grace)
            )
        }
    }

    /// A destroy takes effect.
    func destroy(_ id: Int64, by who: String) {
        guard droplets.removeValue(forKey: id) != nil else { return }
        destroyedAt[id] = world.time.now
        world.trace("do: droplet \(id) destroyed by \(who)")
    }

    // MARK: Reads

    /// One page of the fleet, by offset, as it is now: a deletion between two pages shifts later
    /// droplets one page down, as offset pagination does.
    func fleetPage(_ page: Int) -> (droplets: [ObservedDroplet], more: Bool) {
        let now = world.time.now
        let visible = liveDroplets.filter { $0.visibleAt <= now && $0.tags.contains(FleetTags.fleet) }
        let start = (page - 1) * pageSize
        guard start < visible.count else { return ([], false) }
        let slice = visible[start..<min(visible.count, start + pageSize)]
        return (slice.map { $0.observed(at: now) }, start + pageSize < visible.count)
    }

    func visible(identity: UUID) -> [ObservedDroplet] {
        let now = world.time.now
        return droplets(identity: identity).filter { $0.visibleAt <= now }.map { $0.observed(at: now) }
    }

    func lookup(_ id: Int64) -> ObservedDroplet? {
        droplets[id]?.observed(at: world.time.now)
    }
}
