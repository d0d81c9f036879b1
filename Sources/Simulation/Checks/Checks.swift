// The simulation's checkers: what a seed's world judges while the daemon's own code runs in it,
// one file per family of invariants, each opening with the rules it guards in docs/design.md's
// words.
//
// - IdentityChecks: at most one droplet per identity; creates that took effect; droplets made
//   again after a vanish; bindings that rest on a fresh read.
// - DestroyChecks: never a droplet without the fleet tag, one without an identity, or the one a
//   live row keeps; orphans only with `--orphans delete` and past their grace.
// - ActionChecks: droplet actions only on the fleet's droplets, never repeated while in progress,
//   a power-on only of what a daemon powered off, a resize only of a droplet powered off.
// - LeadershipChecks: row writes only by the session that holds leadership; mutating requests
//   only with the lease; a frozen leader replaced, and no leader unable to act, within 30 s.
// - BudgetChecks: no replica over its per-minute budget.
// - BrakeChecks: no rolling hour with more destroys sent than the destroy budget allows, unless
//   an operator's allowance was in force.
// - ConvergenceChecks: a status never moves backwards on the same droplet; time keeps moving;
//   once the faults stop every row converges, and what counts as converged.
//
// The places that observe a fact (the transport as a request leaves and arrives, the model's
// effects, the database's writes, the world's tick) call a family's check in one line; the
// world keeps the facts (`SimulationWorld`), the checks judge them and report through
// `SimulationWorld.violation`. The production code's own checks (`Invariants` in
// Sources/ReconcileCore/Invariants.swift: a plan that creates twice for one identity or
// destroys what it must keep, a row's create attempts going down, a create reachable before it
// was made) report into the same list through `Invariants.reporting(to:)` in
// `SimulationWorld.run`, in every build; they are not repeated here.

extension SimulationWorld.Outcome {
    /// What kind of failure a violation is, by issue 22's numbering where it is one of its
    /// family, for the runner's tally. It reads the checks' texts: change one, change this.
    public static func kind(of violation: String) -> String {
        if violation.contains("created a second droplet") {
            if violation.contains("deleted with SQL and inserted again") {
                return "1: second droplet after delete and insert"
            }
            if violation.contains("a restore took its row back") { return "second droplet after a restore" }
            return "second droplet"
        }
        if violation.contains("without being able to act") || violation.contains("whose client")
            || violation.contains("had not taken over")
        {
            return "2: a stuck statement stalls the leader"
        }
        if violation.contains("without the lease") { return "5: mutating request without the lease" }
        if violation.contains("its deletion request was withdrawn") {
            return "5: destroy after the deletion was withdrawn"
        }
        if violation.contains("moved backwards") { return "6: status moved backwards" }
        if violation.contains("did not converge: deletion requested: deleted with") {
            return "1: marked deleted while its create was in flight"
        }
        if violation.contains("did not converge") { return "did not converge" }
        if violation.contains("past the destroy budget") { return "destroys past the budget" }
        if violation.contains("an orphan for only") { return "orphan destroyed before its grace" }
        if violation.contains("an orphan") { return "orphan destroyed" }
        return "other"
    }
}
