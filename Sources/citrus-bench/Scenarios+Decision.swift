import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import Timekeeping

struct DecisionResult: Sendable {
    var rows: Int
    var cpuMilliseconds: [Double]
    var actions: Int
}

/// `Decider.decide` over `rows` active rows and their droplets (nothing to do), in process.
func decisionCPU(rows count: Int, runs: Int) -> DecisionResult {
    let now = Date()
    var rows: [ServerRecord] = []
    var droplets: [ObservedDroplet] = []
    rows.reserveCapacity(count)
    droplets.reserveCapacity(count)
    for index in 0..<count {
        let id = UUID()
        let dropletID = Int64(5_000_000_001 + index)
        let ipv4 = "10.\(index / 65536 % 256).\(index / 256 % 256).\(index % 256)"
        let ipv6 = "2604:a880:4:1d0::\(String(index, radix: 16))"
        rows.append(
            ServerRecord(
                id: id,
                revision: 3,
                name: "fleet-\(index)",
                createdAt: now.addingTimeInterval(-3600),
                state: DaemonState(
                    status: .active,
                    dropletID: dropletID,
                    ipv4: ipv4,
                    ipv6: ipv6,
                    createAttemptedAt: now.addingTimeInterval(-3600),
                    createAttempts: 1,
                    // What a converged row records of its droplet (after its first pass).
                    observed: DropletFacts(
                        name: "fleet-\(index)",
                        region: "sfo3",
                        size: "s-1vcpu-512mb-10gb",
                        image: "ubuntu-22-04-x64"
                    )
                )
            )
        )
        droplets.append(
            ObservedDroplet(
                id: dropletID,
                name: "fleet-\(index)",
                status: .active,
                tags: [FleetTags.fleet, FleetTags.identity(for: id)],
                createdAt: now.addingTimeInterval(-3590),
                publicIPv4: ipv4,
                publicIPv6: ipv6,
                region: "sfo3",
                size: "s-1vcpu-512mb-10gb",
                image: "ubuntu-22-04-x64",
                imageID: "112929454"
            )
        )
    }
    let observation = Observation(droplets: droplets, listedAt: now)
    let decider = Decider()
    var samples: [Double] = []
    var actions = 0
    for run in 0..<(runs + 2) {
        let before = threadCPUSeconds()
        let plan = decider.decide(rows: rows, observation: observation, now: now)
        let after = threadCPUSeconds()
        actions = plan.actions.count
        if run >= 2 { samples.append((after - before) * 1000) }  // two warm-up runs
    }
    return DecisionResult(rows: count, cpuMilliseconds: samples, actions: actions)
}
