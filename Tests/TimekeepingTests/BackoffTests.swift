import Testing
import Timekeeping

@Suite("Backoff (capped exponential, equal jitter)")
struct BackoffTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var failures: Int
        var jitter: Double
        var expected: Duration
        var testDescription: String { "failures \(failures), jitter \(jitter) → \(expected)" }
    }

    static let backoff = Backoff(initial: .seconds(2), maximum: .seconds(300))

    // initial 2 s, maximum 300 s: ceilings 2, 4, 8, … 256, then 300.
    static let cases: [Case] = [
        Case(failures: 0, jitter: 0.5, expected: .zero),
        Case(failures: -3, jitter: 0.5, expected: .zero),
        Case(failures: 1, jitter: 0, expected: .seconds(1)),
        Case(failures: 1, jitter: 0.5, expected: .milliseconds(1_500)),
        Case(failures: 2, jitter: 0, expected: .seconds(2)),
        Case(failures: 3, jitter: 0, expected: .seconds(4)),
        Case(failures: 3, jitter: 0.5, expected: .seconds(6)),
        Case(failures: 8, jitter: 0, expected: .seconds(128)),
        Case(failures: 9, jitter: 0, expected: .seconds(150)),  // 512 s capped at 300
        Case(failures: 40, jitter: 0, expected: .seconds(150)),
        Case(failures: Int.max, jitter: 0.5, expected: .seconds(225)),
        Case(failures: 2, jitter: -1, expected: .seconds(2)),  // clamped to 0
        Case(failures: 2, jitter: 7, expected: .seconds(4)),  // clamped to 1
        Case(failures: 2, jitter: .nan, expected: .seconds(2)),
    ]

    @Test(arguments: cases)
    func delay(_ c: Case) {
        #expect(Self.backoff.delay(failures: c.failures, jitter: c.jitter) == c.expected)
    }

    @Test("the delay always lies in [ceiling/2, ceiling) and never exceeds the maximum", arguments: 1...12)
    func bounds(failures: Int) {
        let ceiling = min(Duration.seconds(2) * (1 << (failures - 1)), .seconds(300))
        #expect(Self.backoff.ceiling(failures: failures) == ceiling)
        for jitter in stride(from: 0.0, to: 1.0, by: 0.125) {
            let delay = Self.backoff.delay(failures: failures, jitter: jitter)
            #expect(delay >= ceiling / 2 && delay < ceiling)
        }
        #expect(Self.backoff.delay(failures: failures, jitter: 0.999_999) <= .seconds(300))
    }

    @Test("an initial delay above the maximum is capped; a zero initial or maximum means no delay")
    func degenerate() {
        #expect(Backoff(initial: .seconds(10), maximum: .seconds(4)).delay(failures: 1, jitter: 0) == .seconds(2))
        #expect(Backoff(initial: .zero, maximum: .seconds(4)).delay(failures: 3, jitter: 0.5) == .zero)
        #expect(Backoff(initial: .seconds(1), maximum: .zero).delay(failures: 3, jitter: 0.5) == .zero)
    }

    @Test("a seeded generator gives the same delays every run, and they are spread over [ceiling/2, ceiling)")
    func seeded() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        var first = SplitMix64(seed: 7)
        var second = SplitMix64(seed: 7)
        let once = (1...20).map { backoff.delay(failures: $0, using: &first) }
        let again = (1...20).map { backoff.delay(failures: $0, using: &second) }
        #expect(once == again)
        for (index, delay) in once.enumerated() {
            let ceiling = backoff.ceiling(failures: index + 1)
            #expect(delay >= ceiling / 2 && delay < ceiling)
        }
        var generator = SplitMix64(seed: 11)
        let samples = Set((0..<20).map { _ in backoff.delay(failures: 4, using: &generator) })
        #expect(samples.count > 1)
    }

    @Test("the system generator's delays stay within bounds")
    func system() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        for failures in 1...20 {
            let ceiling = backoff.ceiling(failures: failures)
            let delay = backoff.delay(failures: failures)
            #expect(delay >= ceiling / 2 && delay < ceiling)
        }
    }
}

/// A small deterministic generator (SplitMix64), so jitter is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
