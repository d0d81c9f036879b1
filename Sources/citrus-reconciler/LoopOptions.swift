import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Reconciler
import Timekeeping

/// How often and how carefully the loop works. Each flag has an environment variable, so a unit's
/// `EnvironmentFile=` can set them.
struct LoopOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Full pass at least this often (env CITRUS_RESYNC_INTERVAL; default 60s; \(DurationRange.text(DurationRange.resyncInterval))).",
            valueName: "duration"
        )
    )
    var resyncInterval: String?

    @Option(
        help: ArgumentHelp(
            "Full pass this often while a row waits on DigitalOcean (env CITRUS_FAST_INTERVAL; default 5s; \(DurationRange.text(DurationRange.fastInterval))).",
            valueName: "duration"
        )
    )
    var fastInterval: String?

    @Option(
        help: ArgumentHelp(
            "Requests an hour that full lists of the fleet may spend: a fleet of P pages of 200 is listed every P × 3600 / N seconds, or every --resync-interval if that is longer; between full lists only what waits on DigitalOcean is read (env CITRUS_LIST_BUDGET; default 750, 15% of DigitalOcean's 5,000 an hour; 10…5000).",
            valueName: "n"
        )
    )
    var listBudget: String?

    @Option(
        help: ArgumentHelp(
            "After a create with an unknown outcome, wait this long before believing a list that lacks the droplet (env CITRUS_SETTLE_PERIOD; default 60s; \(DurationRange.text(DurationRange.settlePeriod))).",
            valueName: "duration"
        )
    )
    var settlePeriod: String?

    @Option(
        help: ArgumentHelp(
            "What to do with droplets tagged citrus-host that match no row: report or delete (env CITRUS_ORPHANS; default report).",
            valueName: "policy"
        )
    )
    var orphans: String?

    @Option(
        help: ArgumentHelp(
            "With --orphans delete: how long an orphan must be seen before it is destroyed (env CITRUS_ORPHAN_GRACE; default 10m; \(DurationRange.text(DurationRange.orphanGrace))).",
            valueName: "duration"
        )
    )
    var orphanGrace: String?

    @Option(
        help: ArgumentHelp(
            "Mutating DigitalOcean calls in flight at once (env CITRUS_MAX_CONCURRENT_CALLS; default 4; 1…64).",
            valueName: "n"
        )
    )
    var maxConcurrentCalls: String?

    @Option(
        help: ArgumentHelp(
            "Droplets made for a row whose placement may fail (accepted, then gone before active) before the row fails; each failure is created again (env CITRUS_MAX_PLACEMENTS; default 3; 1…20).",
            valueName: "n"
        )
    )
    var maxPlacements: String?

    @Option(
        help: ArgumentHelp(
            "A row whose size changed: off reports it as drift; allow powers the droplet off, resizes CPU and memory (the disk is kept, so it can be undone) and powers it on, about a minute of downtime; allow-disk grows the disk too, which cannot be undone (env CITRUS_RESIZE; default off).",
            valueName: "permission"
        )
    )
    var resize: String?

    @Option(
        help: ArgumentHelp(
            "A droplet powered off at DigitalOcean, not by this daemon: report it as drift, or power-on (env CITRUS_POWERED_OFF; default report).",
            valueName: "policy"
        )
    )
    var poweredOff: String?

    @Option(
        help: ArgumentHelp(
            "At most this many destroys in any hour, then none until an operator allows them (env CITRUS_DESTROY_BUDGET_PER_HOUR; default 100; 1 to 100000).",
            valueName: "count"
        )
    )
    var destroyBudgetPerHour: String?

    @Option(
        help: ArgumentHelp(
            "At most this percentage of the fleet destroyed in any hour, never limiting below 10 an hour (env CITRUS_DESTROY_BUDGET_PERCENT; default 20; 1 to 100).",
            valueName: "percent"
        )
    )
    var destroyBudgetPercent: String?

    func configuration(environment: [String: String]) throws(ConfigurationError) -> ReconcilerConfiguration {
        var configuration = ReconcilerConfiguration()
        func duration(
            _ flag: String,
            _ value: String?,
            _ variable: String,
            _ range: ClosedRange<Duration>
        ) throws(ConfigurationError) -> Duration? {
            try ConfigurationError.duration(flag, value ?? environment[variable], in: range)
        }
        if let d = try duration(
            "resync-interval",
            resyncInterval,
            "CITRUS_RESYNC_INTERVAL",
            DurationRange.resyncInterval
        ) {
            configuration.resyncInterval = d
        }
        if let d = try duration("fast-interval", fastInterval, "CITRUS_FAST_INTERVAL", DurationRange.fastInterval) {
            configuration.fastInterval = d
        }
        if let d = try duration("settle-period", settlePeriod, "CITRUS_SETTLE_PERIOD", DurationRange.settlePeriod) {
            configuration.decision.settlePeriod = d
        }
        let grace =
            try duration("orphan-grace", orphanGrace, "CITRUS_ORPHAN_GRACE", DurationRange.orphanGrace) ?? .seconds(600)
        switch orphans ?? environment["CITRUS_ORPHANS"] ?? "report" {
        case "report": configuration.decision.orphanPolicy = .report
        case "delete": configuration.decision.orphanPolicy = .delete(grace: grace)
        case let other:
            throw ConfigurationError("--orphans \"\(other)\" is not a policy; use report (the default) or delete")
        }
        let resize = resize ?? environment["CITRUS_RESIZE"] ?? "off"
        guard let permission = LiveChangePolicy.Resize(rawValue: resize) else {
            throw ConfigurationError(
                "--resize \"\(resize)\" is not a permission; use off (the default), allow (CPU and memory) or allow-disk (the disk too, irreversible)"
            )
        }
        configuration.decision.liveChanges.resize = permission
        switch poweredOff ?? environment["CITRUS_POWERED_OFF"] ?? "report" {
        case "report": configuration.decision.liveChanges.powerOnWhenOff = false
        case "power-on": configuration.decision.liveChanges.powerOnWhenOff = true
        case let other:
            throw ConfigurationError("--powered-off \"\(other)\" is not a policy; use report (the default) or power-on")
        }
        if let n = try ConfigurationError.wholeNumber(
            "max-placements",
            maxPlacements ?? environment["CITRUS_MAX_PLACEMENTS"],
            in: 1...20
        ) {
            configuration.decision.maxPlacements = n
        }
        if let n = try ConfigurationError.wholeNumber(
            "max-concurrent-calls",
            maxConcurrentCalls ?? environment["CITRUS_MAX_CONCURRENT_CALLS"],
            in: 1...64
        ) {
            configuration.maxConcurrentCalls = n
        }
        if let n = try ConfigurationError.wholeNumber(
            "list-budget",
            listBudget ?? environment["CITRUS_LIST_BUDGET"],
            in: 10...5000
        ) {
            configuration.listBudgetPerHour = n
        }
        if let n = try ConfigurationError.wholeNumber(
            "destroy-budget-per-hour",
            destroyBudgetPerHour ?? environment["CITRUS_DESTROY_BUDGET_PER_HOUR"],
            in: 1...100_000
        ) {
            configuration.destroyBudget.perHour = n
        }
        if let n = try ConfigurationError.wholeNumber(
            "destroy-budget-percent",
            destroyBudgetPercent ?? environment["CITRUS_DESTROY_BUDGET_PERCENT"],
            in: 1...100
        ) {
            configuration.destroyBudget.percentOfFleet = n
        }
        return configuration
    }
}
