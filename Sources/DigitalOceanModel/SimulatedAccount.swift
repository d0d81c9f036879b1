import Foundation
import Timekeeping

/// The simulated account: droplets, accepted tokens, rate windows, faults and the request log, and
/// the API's behaviour over them. A value, always used under ``SimulatedDigitalOcean``'s lock.
///
/// Its behaviour is in one file per question: `+Routing` (which request goes where, the request
/// log), `+Authentication`, `+RateLimits`, `+Faults`, `+Droplets` (list, read, delete), `+Create`,
/// `+Actions` (droplet actions: checks, timing, effects), `+ActionRoutes` (their endpoints),
/// `+Rendering` (droplet.yml and action.yml as JSON, error bodies), `+Admin` (`/_sim`), `+Agents`,
/// `+Resources` (SSH keys, VPCs, projects, tags and their endpoints).
struct SimulatedAccount: Sendable {
    var tokens: Set<String>
    var bootSeconds: Double
    var bootSpreadSeconds: Double
    var deleteSeconds: Double
    var faults: SimulatorFaults
    var rateLimits: SimulatorRateLimits
    var requestLogLimit: Int
    var rng: SeededGenerator

    var droplets: [Int64: SimulatedDroplet] = [:]
    /// Ids in creation order (ids only grow, so this is also id order).
    var order: [Int64] = []
    /// Above 2^32 on purpose: clients must use 64-bit ids.
    var nextDropletID: Int64 = 5_000_000_001
    var nextActionID: Int64 = 2_100_000_001
    var nextAddress: Int64 = 0
    var windows: [String: TokenWindow] = [:]
    var log: [SimulatorRequestRecord] = []
    var counts: [RouteKey: Int] = [:]
    var sequence = 0
    var dirty = false
    /// Agents by droplet id: in memory only (never in the state file or the request log).
    var agents: [Int64: AgentRecord] = [:]
    var agentTiming: SimulatorAgentTiming
    /// Droplet actions by id (a create's own action is not kept here: see `createAction(of:)`).
    var actions: [Int64: SimulatedAction] = [:]
    /// Actions whose effect has not landed yet, by id.
    var unsettledActionIDs: Set<Int64> = []
    var actionTiming: SimulatorActionTiming
    /// What requests did, kept only when `recordsEffects` (see ``SimulatorEffect``).
    var recordsEffects: Bool
    var effects: [SimulatorEffect] = []
    /// SSH keys, VPCs, projects and tags (`+Resources`).
    var resources: SimulatedResources

    init(configuration: SimulatorConfiguration) {
        tokens = configuration.tokens
        bootSeconds = configuration.bootTime.timeInterval
        bootSpreadSeconds = configuration.bootTimeSpread.timeInterval
        recordsEffects = configuration.recordsEffects
        deleteSeconds = configuration.deleteTime.timeInterval
        faults = configuration.faults
        rateLimits = configuration.rateLimits
        requestLogLimit = max(1, configuration.requestLogLimit)
        agentTiming = configuration.agentTiming
        actionTiming = configuration.actionTiming
        resources = SimulatedResources(sshKeys: configuration.sshKeys)
        var system = SystemRandomNumberGenerator()
        rng = SeededGenerator(seed: configuration.seed ?? system.next())
    }

    mutating func restore(_ saved: PersistedState) {
        for droplet in saved.droplets.sorted(by: { $0.id < $1.id }) {
            droplets[droplet.id] = droplet
            order.append(droplet.id)
        }
        nextDropletID = max(nextDropletID, saved.nextDropletID)
        nextActionID = max(nextActionID, saved.nextActionID)
        nextAddress = max(nextAddress, saved.nextAddress)
        if let saved = saved.resources {
            resources = saved
        } else {
            // A file from before tags were kept: its droplets' tags exist.
            resources.makeTags(saved.droplets.flatMap(\.tags))
        }
        for action in saved.actions ?? [] {
            actions[action.id] = action
            if !action.settled { unsettledActionIDs.insert(action.id) }
        }
    }

    func persistable() -> PersistedState {
        PersistedState(
            droplets: order.compactMap { droplets[$0] },
            nextDropletID: nextDropletID,
            nextActionID: nextActionID,
            nextAddress: nextAddress,
            actions: actions.values.sorted { $0.id < $1.id },
            resources: resources
        )
    }
}

public struct SimulatorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
