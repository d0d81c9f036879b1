import Foundation

/// Capped exponential backoff with jitter, for reconnecting.
public struct Backoff: Sendable, Hashable {
    /// The delay before the first retry (before jitter).
    public var initial: Duration = .milliseconds(100)
    /// No delay is longer than this.
    public var maximum: Duration = .seconds(10)
    public var multiplier: Double = 2
    /// The fraction of each delay that is random: 0.5 gives a delay in [d/2, d].
    public var jitter: Double = 0.5

    public init(
        initial: Duration = .milliseconds(100),
        maximum: Duration = .seconds(10),
        multiplier: Double = 2,
        jitter: Double = 0.5
    ) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay before retry number `attempt` (0-based).
    public func delay<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) -> Duration {
        let cap = maximum.seconds
        let base = min(cap, initial.seconds * pow(multiplier, Double(min(attempt, 64))))
        let fraction = min(max(jitter, 0), 1)
        let low = base * (1 - fraction)
        let seconds = fraction > 0 ? Double.random(in: low...base, using: &generator) : base
        return .nanoseconds(Int64(seconds * 1e9))
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
