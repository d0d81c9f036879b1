import Foundation
import ReconcileCore
import Testing

@Suite("Backoff (equal jitter)")
struct BackoffTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var failures: Int
        var jitter: Double
        var expected: Duration
        var testDescription: String { "failures \(failures), jitter \(jitter) → \(expected)" }
    }

    // base 2 s, cap 300 s: ceilings 2, 4, 8, … 256, then 300.
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
        Case(failures: 2, jitter: .nan, expected: .seconds(2)),
    ]

    @Test(arguments: cases)
    func delay(_ c: Case) {
        #expect(
            Backoff.delay(failures: c.failures, base: .seconds(2), cap: .seconds(300), jitter: c.jitter) == c.expected
        )
    }

    @Test("the delay always lies in [ceiling/2, ceiling] and never exceeds the cap", arguments: 1...12)
    func bounds(failures: Int) {
        let ceiling = min(Duration.seconds(2) * (1 << (failures - 1)), .seconds(300))
        for jitter in stride(from: 0.0, to: 1.0, by: 0.125) {
            let delay = Backoff.delay(failures: failures, base: .seconds(2), cap: .seconds(300), jitter: jitter)
            #expect(delay >= ceiling / 2 && delay < ceiling)
        }
        #expect(
            Backoff.delay(failures: failures, base: .seconds(2), cap: .seconds(300), jitter: 0.999_999) <= .seconds(300)
        )
    }

    @Test("the configuration's base and cap are used")
    func configured() {
        var configuration = DecisionConfiguration()
        configuration.backoffBase = .seconds(10)
        configuration.backoffCap = .seconds(15)
        #expect(Backoff.delay(failures: 1, configuration: configuration, jitter: 0) == .seconds(5))
        #expect(Backoff.delay(failures: 5, configuration: configuration, jitter: 0) == .milliseconds(7_500))
    }
}

@Suite("Identity tags")
struct IdentityTagTests {
    @Test("a row's identity tag reads back as the row")
    func roundTrip() {
        for n in [1, 42, 999_999_999_999] {
            #expect(FleetTags.row(fromIdentityTag: FleetTags.identity(for: rowID(n))) == rowID(n))
        }
        let random = UUID()
        #expect(FleetTags.row(fromIdentityTag: FleetTags.identity(for: random)) == random)
        #expect(FleetTags.identity(for: random) == "citrus-server:" + random.uuidString.lowercased())
    }

    @Test("upper-case hex is read too")
    func upperCase() {
        let id = UUID(uuidString: "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF")!
        #expect(FleetTags.row(fromIdentityTag: "citrus-server:A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF") == id)
        #expect(FleetTags.row(fromIdentityTag: "citrus-server:a1b2c3d4-e5f6-4711-8899-aabbccddeeff") == id)
    }

    @Test(
        "anything else is no identity",
        arguments: [
            "citrus-host",
            "citrus-server:",
            "citrus-server:a1b2c3d4-e5f6-4711-8899-aabbccddeef",  // one digit short
            "citrus-server:a1b2c3d4-e5f6-4711-8899-aabbccddeeff0",  // one too many
            "citrus-server:a1b2c3d4xe5f6-4711-8899-aabbccddeeff",  // no dash
            "citrus-server:g1b2c3d4-e5f6-4711-8899-aabbccddeeff",  // not hex
            "citrus-serve:a1b2c3d4-e5f6-4711-8899-aabbccddeeffa",  // other prefix, same length
            "CITRUS-SERVER:a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
            "citrus-server:a1b2c3d4-e5f6-4711-8899-aabbccddeeé",
        ]
    )
    func rejected(tag: String) {
        #expect(FleetTags.row(fromIdentityTag: tag) == nil)
    }

    @Test("a droplet's identity is read from whichever tag carries it")
    func dropletIdentity() {
        let d = ObservedDroplet(
            id: 1,
            name: "a",
            status: .new,
            tags: ["env:prod", "citrus-host", FleetTags.identity(for: rowID(3))],
            createdAt: now
        )
        #expect(d.identity == rowID(3))
        #expect(d.isInFleet)
    }
}
