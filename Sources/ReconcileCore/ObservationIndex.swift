#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a row's recorded droplet id turned out to be in this observation.
enum Recorded {
    case none
    case observed(ObservedDroplet)
    /// A direct GET answered 404.
    case gone(Int64)
    /// Neither listed nor fetched (list lag, a failed lookup): proves nothing.
    case unknown(Int64)
}

/// The observation, indexed once per pass. Droplets are referred to by their position in
/// `observation.droplets`, which keeps reference counting out of the hot loops.
struct ObservationIndex {
    /// Fleet droplets that carry one row's identity; nearly always exactly one.
    enum IdentityGroup {
        case one(Int)
        case many([Int])
    }

    let droplets: [ObservedDroplet]
    /// Live droplets by id; droplets that answered 404 are left out even if a stale list showed them.
    var byID: [Int64: Int] = [:]
    /// Fleet droplets by the row their identity tag names, in observation order.
    var fleetByIdentity: [UUID: IdentityGroup] = [:]
    /// Live fleet droplets, each once, in observation order.
    var fleet: [Int] = []
    /// Droplet id → the first non-deleted row that records it.
    var recordedBy: [Int64: UUID] = [:]

    init(rows: [ServerRecord], observation: Observation) {
        droplets = observation.droplets
        byID.reserveCapacity(droplets.count)
        fleetByIdentity.reserveCapacity(droplets.count)
        for (position, droplet) in droplets.enumerated()
        where !observation.goneDropletIDs.contains(droplet.id) && byID[droplet.id] == nil {
            byID[droplet.id] = position
            guard droplet.isInFleet else { continue }
            fleet.append(position)
            guard let identity = droplet.identity else { continue }
            switch fleetByIdentity[identity] {
            case nil: fleetByIdentity[identity] = .one(position)
            case .one(let first): fleetByIdentity[identity] = .many([first, position])
            case .many(let positions): fleetByIdentity[identity] = .many(positions + [position])
            }
        }
        recordedBy.reserveCapacity(rows.count)
        for row in rows where row.state.status != .deleted {
            if let dropletID = row.state.dropletID, recordedBy[dropletID] == nil {
                recordedBy[dropletID] = row.id
            }
        }
    }

    /// The fleet droplets carrying `row`'s identity, in observation order.
    func identityDroplets(of row: UUID) -> [ObservedDroplet] {
        switch fleetByIdentity[row] {
        case nil: []
        case .one(let position): [droplets[position]]
        case .many(let positions): positions.map { droplets[$0] }
        }
    }

    func recorded(for row: ServerRecord, gone: Set<Int64>) -> Recorded {
        guard let id = row.state.dropletID else { return .none }
        if gone.contains(id) { return .gone(id) }
        if let position = byID[id] { return .observed(droplets[position]) }
        return .unknown(id)
    }

    /// Whether some other live row records this droplet; such a droplet is never destroyed on this
    /// row's behalf.
    func isRecordedByAnother(_ droplet: ObservedDroplet, than row: UUID) -> Bool {
        if let owner = recordedBy[droplet.id] { return owner != row }
        return false
    }
}
