import ArgumentParser
import Foundation
import Simulation

@main
struct CitrusSimulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-simulate",
        abstract:
            "Run the deterministic simulation: the daemon's own code in seeded worlds of faults, crashes and replicas.",
        discussion: """
            Each seed builds one world (Postgres, DigitalOcean, operators, one to three replicas) in virtual time and \
            checks the safety invariants after every step and convergence once the faults stop. A failing seed is \
            printed with the command that replays it; `--seed N --trace` prints its whole trace.
            """
    )

    @Option(help: "Run this one seed.")
    var seed: UInt64?

    @Option(help: "How many seeds to run (from --first).")
    var seeds: UInt64 = 1000

    @Option(help: "The first seed of a range.")
    var first: UInt64 = 1

    @Flag(help: "Print the trace of the seed (with --seed).")
    var trace = false

    @Flag(help: "Run each seed past its first violation, and tally every kind of failure it finds.")
    var keepGoing = false

    mutating func run() throws {
        if let seed {
            let outcome = SimulationWorld.run(seed: seed, verbose: trace, keepGoing: keepGoing)
            if trace { for line in outcome.trace { print(line) } }
            print(Self.summary(outcome))
            if !outcome.takeovers.isEmpty {
                print(
                    "  frozen leader replaced after "
                        + outcome.takeovers.map { String(format: "%.1f s", $0) }.joined(separator: ", ")
                )
            }
            print("  \(outcome.setting)")
            if outcome.recreatedAfterVanish + outcome.placedAgain + outcome.duplicatesAfterLossyFailover > 0 {
                print(
                    "  droplets made again after a vanish: \(outcome.recreatedAfterVanish); "
                        + "placed again after a failed placement: \(outcome.placedAgain); "
                        + "second droplets after a lossy failover: \(outcome.duplicatesAfterLossyFailover)"
                )
            }
            for violation in outcome.violations { print("  violation \(violation)") }
            if !outcome.violations.isEmpty { throw ExitCode.failure }
            return
        }
        let started = Date()
        var failed: [UInt64] = []
        var steps = 0
        var takeovers: [Double] = []
        var kinds: [String: [UInt64]] = [:]
        var recreated = 0
        var placedAgain = 0
        var lossyDuplicates = 0
        var braked = 0
        var brakedSeeds = 0
        var allowed = 0
        for seed in first..<(first + seeds) {
            let outcome = SimulationWorld.run(seed: seed, keepGoing: keepGoing)
            steps += outcome.steps
            takeovers += outcome.takeovers
            recreated += outcome.recreatedAfterVanish
            placedAgain += outcome.placedAgain
            lossyDuplicates += outcome.duplicatesAfterLossyFailover
            braked += outcome.destroysBraked
            if outcome.destroysBraked > 0 { brakedSeeds += 1 }
            allowed += outcome.destroysAllowed
            if !outcome.violations.isEmpty {
                failed.append(seed)
                let kind = SimulationWorld.Outcome.kind(of: outcome.violations[0])
                for kind in Set(outcome.violations.map(SimulationWorld.Outcome.kind(of:))) {
                    kinds[kind, default: []].append(seed)
                }
                print("seed \(seed) FAILED [\(kind)]: \(outcome.violations.first ?? "")")
                if keepGoing {
                    var seen: Set<String> = [kind]
                    for violation in outcome.violations {
                        let other = SimulationWorld.Outcome.kind(of: violation)
                        if seen.insert(other).inserted { print("  then [\(other)]: \(violation)") }
                    }
                }
                print("  replay: \(Self.replay) --seed \(seed) --trace")
            }
        }
        for (kind, seeds) in kinds.sorted(by: { $0.key < $1.key }) {
            print(
                "kind [\(kind)]: \(seeds.count) seeds, first \(seeds.prefix(8).map(String.init).joined(separator: ", "))"
            )
        }
        print(
            "droplets made again after a vanish: \(recreated); placed again after a failed placement: \(placedAgain); "
                + "second droplets after a lossy failover: \(lossyDuplicates)"
        )
        print(
            "destroy brake: braked \(braked) times in \(brakedSeeds) seeds; "
                + "\(allowed) destroys sent under an operator's allowance"
        )
        let elapsed = Date().timeIntervalSince(started)
        print(
            String(
                format: "%llu seeds (%llu…%llu) in %.1f s (%.0f seeds/s, %d steps): %d with violations",
                seeds,
                first,
                first + seeds - 1,
                elapsed,
                Double(seeds) / elapsed,
                steps,
                failed.count
            )
        )
        if !takeovers.isEmpty {
            takeovers.sort()
            print(
                String(
                    format: "frozen leader replaced: %d times, median %.1f s, worst %.1f s (virtual time)",
                    takeovers.count,
                    takeovers[takeovers.count / 2],
                    takeovers.last ?? 0
                )
            )
        }
        if !failed.isEmpty { throw ExitCode.failure }
    }

    /// A seed replays only in the build configuration that ran it: the optimiser changes where a
    /// task suspends, and so the interleavings the seed picks from.
    #if DEBUG
        static let replay = "swift run citrus-simulate"
    #else
        static let replay = "swift run -c release citrus-simulate"
    #endif

    static func summary(_ outcome: SimulationWorld.Outcome) -> String {
        String(
            format: "seed %llu: %d replicas, %d rows, %d requests, %.0f virtual s, %d steps, trace %016llx, %@",
            outcome.seed,
            outcome.replicas,
            outcome.rows,
            outcome.requests,
            outcome.virtualSeconds,
            outcome.steps,
            outcome.traceHash,
            outcome.violations.isEmpty ? "no violation" : "\(outcome.violations.count) violations"
        )
    }
}
