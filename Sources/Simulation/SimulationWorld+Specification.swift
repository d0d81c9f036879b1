import DigitalOceanModel
import Foundation
import ReconcileCore

/// The droplet specification (issue 25) under the world's faults: seeds give every droplet keys,
/// a VPC, extra tags, backups and a project, and shut servers down before destroying them;
/// operators change live rows' tags and backups. At the end every live row that was left alone
/// by hand has its droplet tagged, backed up and in the project as it asks.
extension SimulationWorld {
    static let extraTags = ["web", "db", "env:sim"]
    /// The platform's project, made in the world's DigitalOcean beside the account's default one.
    static let platformProject = "8d7f2a4e-25c0-4b6e-9d1a-5e0c1a2b3c4d"

    func drawSpecification() {
        var defaults = DropletDefaults()
        if specificationRandom() < 0.5 {
            defaults.sshKeys = [SimulatedSSHKey.standard.fingerprint]
            defaults.vpcs = Dictionary(
                uniqueKeysWithValues: ["sfo3", "nyc3"].compactMap { region in
                    SimulatedVPC.defaultID(region: region).map { (region, $0) }
                }
            )
            defaults.tags = ["env:sim"]
            defaults.backups = specificationRandom() < 0.5
            defaults.projectID = Self.platformProject
        }
        dropletDefaults = defaults
        if specificationRandom() < 0.3 { shutdownBeforeDestroy = 10 + specificationRandom() * 50 }
        trace(
            "droplets: keys \(defaults.sshKeys), tags \(defaults.tags), backups \(defaults.backups), project \(defaults.projectID ?? "default")"
                + (shutdownBeforeDestroy.map { String(format: ", shut down before destroy (%.0f s)", $0) } ?? "")
        )
    }

    func scheduleSpecificationChanges(end: Double) {
        func at(_ range: ClosedRange<Double>) -> Date {
            time.origin.addingTimeInterval(
                range.lowerBound + specificationRandom() * (range.upperBound - range.lowerBound)
            )
        }
        if dropletDefaults.projectID == Self.platformProject {
            _ = try? digitalOcean.addProject(name: "platform", id: Self.platformProject)
        }
        guard specificationRandom() < 0.5 else { return }
        for _ in 0..<Int(specificationRandom() * 4) {
            time.schedule(at: at(10...end)) { [unowned self] in self.retagRow() }
        }
        for _ in 0..<Int(specificationRandom() * 3) {
            time.schedule(at: at(10...end)) { [unowned self] in self.switchBackups() }
        }
    }

    /// An operator sets a row's tags: a subset of a few, or back to the default (NULL).
    private func retagRow() {
        guard let row = liveRow() else { return }
        let tags: [String]? =
            specificationRandom() < 0.2 ? nil : Self.extraTags.filter { _ in specificationRandom() < 0.5 }
        database.update(row.id) { row in
            var options = row.options ?? DropletOptions()
            options.tags = tags
            row.options = options
        }
        trace("operator: \(label(row.id)) tags \(tags.map { "\($0)" } ?? "default")")
        notify(row.id)
    }

    /// An operator switches a row's backups.
    private func switchBackups() {
        guard let row = liveRow() else { return }
        let backups = !(row.options?.backups ?? dropletDefaults.backups)
        database.update(row.id) { row in
            var options = row.options ?? DropletOptions()
            options.backups = backups
            row.options = options
        }
        trace("operator: \(label(row.id)) backups \(backups ? "on" : "off")")
        notify(row.id)
    }

    /// What is wrong with a converged live row's droplet against its specification, or nil.
    func specificationProblem(of row: ServerRecord, droplet: SimulatedDroplet) -> String? {
        let specification = DropletSpecification(options: row.options, defaults: dropletDefaults, region: row.region)
        let own = [FleetTags.fleet, FleetTags.identity(for: row.id)]
        let tags = droplet.tags.filter { !own.contains($0) }.sorted()
        if tags != specification.tags, row.state.refused?.column != "tags" {
            return "droplet \(droplet.id) is tagged \(tags), the row asks \(specification.tags)"
        }
        if droplet.backups != specification.backups, row.state.refused?.column != "backups" {
            return "droplet \(droplet.id) has backups \(droplet.backups ? "on" : "off"), the row asks otherwise"
        }
        if let project = specification.projectID, digitalOcean.projectID(ofDroplet: droplet.id) != project {
            return "droplet \(droplet.id) is in project \(droplet.projectID ?? "default"), the row asks \(project)"
        }
        if let vpc = specification.vpcUUID, droplet.vpcUUID != vpc, row.state.drift?.contains("vpc:") != true {
            return "droplet \(droplet.id) is in VPC \(droplet.vpcUUID), the row asks \(vpc) and no drift says so"
        }
        return nil
    }
}
