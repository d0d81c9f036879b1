import Foundation
import ReconcileCore
import Testing
import Timekeeping

@Suite("Per-row backoff")
struct RowBackoffTests {
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
