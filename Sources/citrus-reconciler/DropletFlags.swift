import ArgumentParser
import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import TerminalText
import Reconciler

/// What every droplet is made with unless its row says otherwise (design.md, "The droplet the
/// daemon asks for"). Each flag has an environment variable, so a unit's `EnvironmentFile=` can set
/// them; every value is checked at start, so a typo stops the daemon instead of failing rows.
struct DropletFlags: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "SSH keys every droplet gets, by id or fingerprint, comma-separated; a row's ssh_keys replaces them (env CITRUS_SSH_KEYS; default none: DigitalOcean then emails a root password).",
            valueName: "keys"
        )
    )
    var sshKeys: String?

    @Option(
        help: ArgumentHelp(
            "The VPC for each region, as region=uuid, comma-separated; a row's vpc_uuid replaces it (env CITRUS_VPCS; default the account's default VPC of the region).",
            valueName: "region=uuid,…"
        )
    )
    var vpcs: String?

    @Option(
        help: ArgumentHelp(
            "Extra tags every droplet carries, comma-separated, besides the daemon's own two; a row's tags replaces them. Tags are applied and removed in place (env CITRUS_TAGS; default none).",
            valueName: "tags"
        )
    )
    var tags: String?

    @Option(help: ArgumentHelp("IPv6 on new droplets: on or off (env CITRUS_IPV6; default on).", valueName: "on|off"))
    var ipv6: String?

    @Option(
        help: ArgumentHelp(
            "DigitalOcean's metrics agent on new droplets: on or off (env CITRUS_MONITORING; default on).",
            valueName: "on|off"
        )
    )
    var monitoring: String?

    @Option(
        help: ArgumentHelp(
            "Backups: on or off, switched in place on live droplets too (env CITRUS_BACKUPS; default off).",
            valueName: "on|off"
        )
    )
    var backups: String?

    @Option(
        help: ArgumentHelp(
            "DigitalOcean's console agent on new droplets: default (installed, its errors ignored), on (its errors fail the create) or off (env CITRUS_DROPLET_AGENT; default default).",
            valueName: "default|on|off"
        )
    )
    var dropletAgent: String?

    @Option(
        help: ArgumentHelp(
            "The project new droplets are assigned to, by id; a row's project_id replaces it (env CITRUS_PROJECT; default the account's default project).",
            valueName: "uuid"
        )
    )
    var project: String?

    @Option(
        help: ArgumentHelp(
            "Before destroying a droplet whose row asked for deletion, shut the server down gracefully and wait for it to be off, at most this long after delete_requested_at (env CITRUS_SHUTDOWN_BEFORE_DESTROY; default 0: destroy at once; 0…10m).",
            valueName: "duration"
        )
    )
    var shutdownBeforeDestroy: String?

    /// Sets `configuration`'s droplet defaults; call after its enrollment is set (the user data
    /// template's digest is recorded with every create, so a changed template shows as drift).
    func apply(
        to configuration: inout ReconcilerConfiguration,
        environment: [String: String]
    ) throws(ConfigurationError) {
        var defaults = try defaults(environment: environment)
        // 64 bits tell templates apart; a full SHA-256 in the debug dump of the configuration would
        // look like a secret to anyone (and any check) searching the journal for one.
        defaults.userDataDigest = configuration.enrollment.map {
            String(AgentEnrollment.keySHA256($0.template).prefix(16))
        }
        configuration.decision.droplets = defaults
        let wait = try ConfigurationError.duration(
            "shutdown-before-destroy",
            shutdownBeforeDestroy ?? environment["CITRUS_SHUTDOWN_BEFORE_DESTROY"],
            in: .zero ... .seconds(600)
        )
        configuration.decision.shutdownBeforeDestroy = wait == .zero ? nil : wait
    }

    func defaults(environment: [String: String]) throws(ConfigurationError) -> DropletDefaults {
        var defaults = DropletDefaults()
        if let keys = list(sshKeys ?? environment["CITRUS_SSH_KEYS"]) {
            for key in keys {
                try check("ssh-keys") { () throws(DigitalOceanError) in _ = try SSHKeyReference(parsing: key) }
            }
            defaults.sshKeys = keys
        }
        if let pairs = list(vpcs ?? environment["CITRUS_VPCS"]) {
            for pair in pairs {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty else {
                    throw ConfigurationError(
                        "--vpcs \"\(pair)\" is not region=uuid (for example nyc3=5a4981aa-9653-4bd1-bef5-d6bff52042e4)"
                    )
                }
                try check("vpcs") { () throws(DigitalOceanError) in try DropletCreateRequest.validateVPCUUID(parts[1]) }
                guard defaults.vpcs.updateValue(parts[1], forKey: parts[0]) == nil else {
                    throw ConfigurationError(
                        "--vpcs names region \(parts[0]) twice; a region has one VPC for the daemon's droplets"
                    )
                }
            }
        }
        if let tags = list(tags ?? environment["CITRUS_TAGS"]) {
            for tag in tags {
                try check("tags") { () throws(DigitalOceanError) in try DropletCreateRequest.validateTag(tag) }
            }
            defaults.tags = tags
        }
        defaults.ipv6 = try onOff("ipv6", ipv6 ?? environment["CITRUS_IPV6"]) ?? defaults.ipv6
        defaults.monitoring =
            try onOff("monitoring", monitoring ?? environment["CITRUS_MONITORING"]) ?? defaults.monitoring
        defaults.backups = try onOff("backups", backups ?? environment["CITRUS_BACKUPS"]) ?? defaults.backups
        switch dropletAgent ?? environment["CITRUS_DROPLET_AGENT"] ?? "default" {
        case "default": defaults.withDropletAgent = nil
        case "on": defaults.withDropletAgent = true
        case "off": defaults.withDropletAgent = false
        case let other:
            throw ConfigurationError("--droplet-agent \"\(other)\" is not a choice; use default, on or off")
        }
        if let project = project ?? environment["CITRUS_PROJECT"], !project.isEmpty {
            try check("project") { () throws(DigitalOceanError) in try DigitalOceanClient.validateProjectID(project) }
            defaults.projectID = project
        }
        let specification = DropletSpecification(options: nil, defaults: defaults, region: "")
        if let problem = specification.problem { throw ConfigurationError("--tags: \(problem)") }
        return defaults
    }

    /// A comma-separated list; nil when not given, empty when given empty (none at all).
    private func list(_ text: String?) -> [String]? {
        text.map { $0.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty } }
    }

    private func onOff(_ flag: String, _ text: String?) throws(ConfigurationError) -> Bool? {
        switch text {
        case nil: nil
        case "on": true
        case "off": false
        case let other?: throw ConfigurationError("--\(flag) \"\(other)\" is not on or off")
        }
    }

    private func check(_ flag: String, _ body: () throws(DigitalOceanError) -> Void) throws(ConfigurationError) {
        do {
            try body()
        } catch {
            throw ConfigurationError("--\(flag): \(error.message)")
        }
    }
}
