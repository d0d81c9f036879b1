import DigitalOceanModel
import Foundation
import ReconcileCore
import Reconciler
import Timekeeping

/// The world's DigitalOcean: the one model `citrus-do-sim` serves (`DigitalOceanModel`), on the
/// world's clock, with the seed's faults. The world changes it only as people do (by hand, out
/// of band) and watches what requests do to it through its effects (`SimulationWorld+Effects`).
extension SimulationWorld {
    /// The token every replica sends (one account, one shared per-minute limit).
    static let daemonToken = "simulated-daemon-token"

    /// The model for this seed: DigitalOcean's per-minute limit, droplets that boot in 5 to 45 s
    /// and go 3 s after a DELETE, and the fault plan's rates.
    func makeDigitalOcean(perMinute: Int) -> SimulatedDigitalOcean {
        var configuration = SimulatorConfiguration()
        configuration.tokens = [Self.daemonToken]
        configuration.clock = ProcessClock(time: time, skew: 0)
        configuration.seed = seed ^ 0x6469_6769_7461_6c6f
        configuration.rateLimits.perMinute = perMinute
        // Only the minute is simulated; the hourly limit is the budget's own concern.
        configuration.rateLimits.perHour = 1_000_000
        configuration.bootTime = .seconds(5)
        configuration.bootTimeSpread = .seconds(40)
        configuration.deleteTime = .seconds(3)
        configuration.requestLogLimit = 1
        configuration.recordsEffects = true
        configuration.faults = faults.modelFaults(requestTimeout: requestTimeout)
        // A configuration without a state directory cannot fail to load.
        return try! SimulatedDigitalOcean(configuration: configuration)
    }

    /// Faults stop here: from now on the model answers every request at once and in full.
    func quietDigitalOcean() {
        digitalOcean.setFaults(SimulatorFaults())
    }

    /// Droplets that exist now (not yet gone after a DELETE), by id.
    func existingDroplets() -> [SimulatedDroplet] {
        let now = time.now
        return digitalOcean.droplets().filter { $0.apiStatus(at: now) != nil }
    }

    /// Droplets that exist now with the fleet tag and `identity`'s tag, oldest id first.
    func liveDroplets(identity: UUID) -> [SimulatedDroplet] {
        existingDroplets().filter { $0.identity == identity && $0.inFleet }
    }

    /// `liveDroplets(identity:)` for every identity at once.
    func liveDropletsByIdentity() -> [UUID: [SimulatedDroplet]] {
        var byIdentity: [UUID: [SimulatedDroplet]] = [:]
        for droplet in existingDroplets() where droplet.inFleet {
            if let identity = droplet.identity { byIdentity[identity, default: []].append(droplet) }
        }
        return byIdentity
    }

    func existingDroplet(_ id: Int64) -> SimulatedDroplet? {
        guard let droplet = digitalOcean.droplet(id: id), droplet.apiStatus(at: time.now) != nil else { return nil }
        return droplet
    }

    /// When a droplet stopped showing in any read: its delete ended, or its placement failed.
    func goneAt(_ id: Int64) -> Date? {
        guard let droplet = digitalOcean.droplet(id: id) else { return nil }
        return droplet.deletedAt ?? droplet.vanishedAt
    }

    /// A droplet made outside the daemon (before it ran, or by another tool): booted, listed at once.
    func makeByHand(name: String, tags: [String]) {
        var injection = SimulatorDropletInjection(name: name)
        injection.tags = tags
        guard let droplet = try? digitalOcean.inject(injection) else { return }
        trace("do: droplet \(droplet.id) made for \(droplet.identity.map(label) ?? "no row") by world")
    }

    /// A droplet destroyed in the control panel.
    func destroyByHand(_ id: Int64) {
        guard digitalOcean.deleteOutOfBand(dropletID: id) else { return }
        trace("do: droplet \(id) destroyed by world")
    }

    /// An action done in the control panel; false when DigitalOcean refused it (a pending event).
    func changeByHand(_ id: Int64, _ body: [(String, JSONValue)]) -> Bool {
        (try? digitalOcean.changeOutOfBand(dropletID: id, .object(body))) != nil
    }

    /// Whether an action sent through the API is still in progress on the droplet.
    func actionInProgress(on id: Int64) -> Bool {
        let now = time.now
        return digitalOcean.actions().contains {
            $0.dropletID == id && !$0.outOfBand && $0.status(at: now) == "in-progress"
        }
    }
}

extension SimulatedDroplet {
    /// The row whose identity tag it carries.
    var identity: UUID? { tags.lazy.compactMap(FleetTags.row(fromIdentityTag:)).first }
    /// Whether it carries `citrus-host`: the daemon's to manage.
    var inFleet: Bool { tags.contains(FleetTags.fleet) }
    var poweredOff: Bool { poweredOffAt != nil }
}

extension FaultPlan {
    /// The plan's DigitalOcean rates, as the model's faults.
    func modelFaults(requestTimeout: TimeInterval) -> SimulatorFaults {
        var faults = SimulatorFaults()
        faults.createServerErrorBeforeEffectProbability = createErrorBeforeEffect
        faults.createServerErrorProbability = createErrorAfterEffect
        faults.createResponseLostProbability = createAnswerLost
        faults.createLateProbability = createLate
        faults.createLateSeconds = requestTimeout
        faults.createLateSpreadSeconds = Self.maxLateEffect
        faults.serverErrorProbability = readError
        faults.serverErrorAfterEffectProbability = destroyError / 2
        faults.responseLostProbability = readAnswerLost
        faults.listLagSpreadSeconds = listLagMax
        faults.identityTagLagSeconds = identityTagLag
        faults.actionErrorProbability = actionErrored
        faults.vanishProbability = placementFailure
        return faults
    }
}
