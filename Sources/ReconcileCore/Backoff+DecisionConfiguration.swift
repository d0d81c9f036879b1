import Timekeeping

extension Backoff {
    /// Per-row retries after transient errors (429, 5xx, timeouts, lost connections): the
    /// configuration's base and cap.
    public init(_ configuration: DecisionConfiguration) {
        self.init(initial: configuration.backoffBase, maximum: configuration.backoffCap)
    }

    /// The per-row delay after `failures` consecutive transient failures, with the caller's
    /// jitter in `0..<1` (the core draws none itself).
    public static func delay(failures: Int, configuration: DecisionConfiguration, jitter: Double) -> Duration {
        Backoff(configuration).delay(failures: failures, jitter: jitter)
    }
}
