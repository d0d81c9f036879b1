/// A pass ended early: this replica no longer leads.
public struct LeadershipLost: Error, CustomStringConvertible {
    public var description: String { "this replica no longer leads; the pass stopped" }
}
