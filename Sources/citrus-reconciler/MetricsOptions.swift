import ArgumentParser
import MetricsEndpoint

/// The opt-in metrics endpoint (`/metrics` for Prometheus, `/healthz`).
struct MetricsOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics at /metrics and a health check at /healthz on this address, such as 127.0.0.1:9464 (env CITRUS_METRICS_ADDRESS; default: off).",
            valueName: "host:port"
        )
    )
    var metricsAddress: String?

    /// Nil when the endpoint is off.
    func address(environment: [String: String]) throws(ConfigurationError) -> MetricsAddress? {
        guard let text = metricsAddress ?? environment["CITRUS_METRICS_ADDRESS"], !text.isEmpty else { return nil }
        guard let address = MetricsAddress(text) else {
            throw ConfigurationError(
                "--metrics-address \"\(text)\" is not an IP address and port such as 127.0.0.1:9464 or [::1]:9464 (port 0 picks a free one)"
            )
        }
        return address
    }
}
