import Foundation
import Timekeeping

/// Per-row retry delays after transient errors (429, 5xx, timeouts, lost connections).
///
/// "Equal jitter": the ceiling is `base × 2^(failures-1)`, capped at `cap`; the delay is half the
/// ceiling plus `jitter` × the other half. Half the ceiling is always waited, so a burst of failing
/// rows never retries at once and never immediately, while the other half spreads them out.
public enum Backoff {
    /// - Parameters:
    ///   - failures: consecutive transient failures so far (1 after the first); 0 or less means no delay.
    ///   - base: the ceiling after the first failure.
    ///   - cap: the largest ceiling.
    ///   - jitter: a random number in `0..<1` drawn by the caller (the core draws none itself);
    ///     values outside that range are clamped.
    /// - Returns: a delay from `ceiling/2` up to (for jitter below 1, short of) `ceiling`.
    public static func delay(failures: Int, base: Duration, cap: Duration, jitter: Double) -> Duration {
        guard failures > 0, base > .zero, cap > .zero else { return .zero }
        var ceiling = base
        var doublings = 1
        // Doubling stops at the cap, so this neither overflows nor loops more than log2(cap/base) times.
        while doublings < failures, ceiling < cap {
            ceiling = ceiling * 2
            doublings += 1
        }
        ceiling = min(ceiling, cap)
        let unit = jitter.isNaN ? 0 : min(max(jitter, 0), 1)
        let half = ceiling / 2
        return half + half * unit
    }

    /// `delay` with the base and cap of a decision configuration.
    public static func delay(failures: Int, configuration: DecisionConfiguration, jitter: Double) -> Duration {
        delay(failures: failures, base: configuration.backoffBase, cap: configuration.backoffCap, jitter: jitter)
    }
}
