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
/// `observation.droplets`, and rows and droplets are read in place by index, not copied: copying
/// one retains each of its strings and boxes, and at 50,000 rows that was a fifth of a pass.
struct ObservationIndex {
    /// Fleet droplets that carry one row's identity; nearly always exactly one.
    enum IdentityGroup {
        case one(Int)
        case many([Int])
    }

    /// A row id as a dictionary key: two words hashed as such (a `UUID` hashes its 16 bytes one
    /// by one, which at 50,000 look-ups a pass is a tenth of the decision).
    struct RowKey: Hashable {
        let high: UInt64
        let low: UInt64

        init(_ id: UUID) {
            (high, low) = withUnsafeBytes(of: id.uuid) {
                ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self))
            }
        }
    }

    let droplets: [ObservedDroplet]
    /// Live droplets by id; droplets that answered 404 are left out even if a stale list showed them.
    var byID: [Int64: Int] = [:]
    /// Fleet droplets by the row their identity tag names, in observation order.
    var fleetByIdentity: [RowKey: IdentityGroup] = [:]
    /// Live fleet droplets, each once, in observation order.
    var fleet: [Int] = []
    /// Droplet id → the first non-deleted row that records it.
    var recordedBy: [Int64: UUID] = [:]

    init(rows: [ServerRecord], observation: Observation) {
        droplets = observation.droplets
        byID.reserveCapacity(droplets.count)
        fleetByIdentity.reserveCapacity(droplets.count)
        let gone = observation.goneDropletIDs
        for position in droplets.indices {
            let id = droplets[position].id
            guard byID[id] == nil, gone.isEmpty || !gone.contains(id) else { continue }
            byID[id] = position
            guard droplets[position].isInFleet else { continue }
            fleet.append(position)
            guard let identity = droplets[position].identity.map(RowKey.init) else { continue }
            switch fleetByIdentity[identity] {
            case nil: fleetByIdentity[identity] = .one(position)
            case .one(let first): fleetByIdentity[identity] = .many([first, position])
            case .many(let positions): fleetByIdentity[identity] = .many(positions + [position])
            }
        }
        recordedBy.reserveCapacity(rows.count)
        for index in rows.indices where rows[index].state.status != .deleted {
            if let dropletID = rows[index].state.dropletID, recordedBy[dropletID] == nil {
                recordedBy[dropletID] = rows[index].id
            }
        }
    }

    /// The fleet droplets carrying a row's identity (its group in `fleetByIdentity`), in
    /// observation order.
    func identityDroplets(_ group: IdentityGroup?) -> [ObservedDroplet] {
        switch group {
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
