import Foundation

/// The rate budget: what a replica may spend of the token's allowance (docs/design.md, "The loop",
/// Act: 250 requests a minute and 5,000 an hour, shared with everything else using the token).
///
/// - No replica sends more requests within any minute than its per-minute budget, every request
///   counted as it leaves (reads, lookups and retries included), whatever DigitalOcean answers.
///
/// The hourly budget is the daemon's own concern, not judged here (the model lifts its hourly
/// limit: see `makeDigitalOcean`). A create's timing against its intent (rule 2: the moment it
/// could reach DigitalOcean, no earlier than its intent) is the production code's own check
/// (`Invariants`), which reports here through `Invariants.reporting(to:)`; what a late create
/// does is judged by its effect (`IdentityChecks`: never a second droplet).
enum BudgetChecks {
    /// A request leaving replica `name` now; `sends` holds when it sent each request in the last
    /// minute, and gets this one.
    static func requestSent(by name: String, sends: inout [Date], perMinute: Int, in world: SimulationWorld) {
        let now = world.time.now
        sends.removeAll { $0 <= now.addingTimeInterval(-60) }
        sends.append(now)
        if sends.count > perMinute {
            world.violation("\(name) sent \(sends.count) requests within a minute, over its budget of \(perMinute)")
        }
    }
}
