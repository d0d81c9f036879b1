/// The last look at a destroy before it leaves (design.md, identity rule 8): a destroy decided
/// from one pass's rows may wait minutes in the rate budget and its retries, and meanwhile an
/// operator can clear `delete_requested_at`, a row can come to record the droplet, or a row can
/// be inserted again for an orphan's identity. The act layer reads the rows that could claim the
/// droplet right before the request leaves, and sends it only if this still says nothing.
extension DestroyReason {
    /// Why the destroy of `dropletID` is no longer wanted, given the live rows that carry the
    /// droplet's identity or record its id, as read just now; nil when it still is.
    public func withdrawal(of dropletID: Int64, claimants rows: [ServerRecord]) -> String? {
        let live = rows.filter { $0.state.status != .deleted }
        switch self {
        case .deleteRequested(let id):
            guard let row = live.first(where: { $0.id == id }) else {
                return "its row is gone"
            }
            if row.deleteRequestedAt == nil { return "the row no longer asks for deletion" }
            if row.isProtected { return "the row is protected" }
            if let other = live.first(where: { $0.id != id && $0.state.dropletID == dropletID }) {
                return "server \(other.name) records the droplet"
            }
            return nil
        case .duplicate(let id, _, _, _):
            guard let row = live.first(where: { $0.id == id }) else { return "its row is gone" }
            if row.state.dropletID == dropletID { return "server \(row.name) now records it as its droplet" }
            if let other = live.first(where: { $0.id != id && $0.state.dropletID == dropletID }) {
                return "server \(other.name) records the droplet"
            }
            return nil
        case .orphan(let identity):
            if let row = live.first(where: { $0.id == identity || $0.state.dropletID == dropletID }) {
                return "server \(row.name) claims it"
            }
            return nil
        }
    }
}
