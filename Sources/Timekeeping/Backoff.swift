/// Capped exponential backoff with equal jitter: the one retry delay of the daemon (database
/// reconnects, LISTEN, campaigning, failed passes, per-row retries, API retries).
///
/// After `failures` consecutive failures the ceiling is `initial × 2^(failures-1)`, capped at
/// `maximum`; the delay is half the ceiling plus `jitter` × the other half. Half the ceiling is
/// always waited, so a burst of failures never retries at once and never immediately, while the
/// other half spreads them out.
///
/// The jitter is drawn by the caller (a number in `0..<1`) or from a generator it passes in, so a
/// test or the deterministic simulation decides it; nothing here draws randomness of its own
/// unless asked to with ``delay(failures:)``.
public struct Backoff: Sendable, Hashable {
    /// The ceiling after the first failure.
    public var initial: Duration
    /// The largest ceiling: no delay is longer than this.
    public var maximum: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The ceiling after `failures` consecutive failures: zero for none (or a non-positive
    /// `initial` or `maximum`).
    public func ceiling(failures: Int) -> Duration {
        guard failures > 0, initial > .zero, maximum > .zero else { return .zero }
        var ceiling = initial
        var doublings = 1
        // Doubling stops at the cap, so this neither overflows nor loops more than log2(cap/initial) times.
        while doublings < failures, ceiling < maximum {
            ceiling = ceiling * 2
            doublings += 1
        }
        return min(ceiling, maximum)
    }

    /// - Parameters:
    ///   - failures: consecutive failures so far (1 after the first); 0 or less means no delay.
    ///   - jitter: a number in `0..<1` drawn by the caller; values outside it are clamped, NaN is 0.
    /// - Returns: a delay from `ceiling/2` up to (for jitter below 1, short of) `ceiling`.
    public func delay(failures: Int, jitter: Double) -> Duration {
        let unit = jitter.isNaN ? 0 : min(max(jitter, 0), 1)
        let half = ceiling(failures: failures) / 2
        return half + half * unit
    }

    /// The delay with its jitter drawn from `generator` (a seeded one keeps tests deterministic).
    public func delay<Generator: RandomNumberGenerator>(
        failures: Int,
        using generator: inout Generator
    ) -> Duration {
        delay(failures: failures, jitter: Double.random(in: 0..<1, using: &generator))
    }

    /// The delay with its jitter drawn from the system's generator.
    public func delay(failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(failures: failures, using: &generator)
    }
}
