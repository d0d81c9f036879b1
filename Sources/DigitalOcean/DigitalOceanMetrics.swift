#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Metrics

/// The client's metrics, through swift-metrics only: with no factory bootstrapped they record
/// nothing. Handlers are made at each use, so a factory bootstrapped later still receives them.
/// Names and labels are documented in README.md ("Metrics").
enum DigitalOceanMetrics {
    /// One request's answer: `code` is the HTTP status, or `none` when no answer came (refused
    /// connection, timeout, reset).
    static func response(operation: String, status: Int?) {
        Counter(
            label: "citrus_digitalocean_requests_total",
            dimensions: [("route", route(of: operation)), ("code", status.map(String.init) ?? "none")]
        ).increment()
    }

    /// A 429: `limit` is `minute` (it carried `retry-after`) or `hour` (it did not).
    static func rateLimited(perMinute: Bool) {
        Counter(label: "citrus_digitalocean_rate_limited_total", dimensions: [("limit", perMinute ? "minute" : "hour")])
            .increment()
    }

    /// `GET /v2/droplets/123` → `GET /v2/droplets/:id`: one series per route, not per droplet.
    static func route(of operation: String) -> String {
        let parts = operation.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return operation }
        let path = parts[1].split(separator: "?", maxSplits: 1).first ?? ""
        let normalised = path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            !segment.isEmpty && segment.allSatisfy(\.isNumber) ? ":id" : String(segment)
        }
        return "\(parts[0]) \(normalised.joined(separator: "/"))"
    }
}

extension RateBudget {
    /// Sets the budget gauges from what the budget knows now; call right before exporting.
    /// The minute's figure is this process's own pacing window (DigitalOcean does not report the
    /// per-minute spend); the hour's is DigitalOcean's `ratelimit-remaining` less this process's
    /// requests since, when a response has reported it, and never more than this process's own
    /// hourly window allows.
    public func publishMetrics() {
        let snapshot = self.snapshot
        let minute = max(0, configuration.perMinute - snapshot.sentLastMinute)
        var hour = max(0, configuration.perHour - snapshot.sentLastHour)
        if let reported = snapshot.remaining { hour = max(0, min(hour, reported)) }
        Gauge(label: "citrus_digitalocean_budget_remaining", dimensions: [("window", "minute")]).record(minute)
        Gauge(label: "citrus_digitalocean_budget_remaining", dimensions: [("window", "hour")]).record(hour)
        Gauge(label: "citrus_digitalocean_rate_paused").record(snapshot.pausedUntil == nil ? 0 : 1)
    }
}
