import PostgresAdapter
import Testing

/// What the journal says about the database's side of the exactly-once promise, from the facts one
/// session reads (no server needed).
@Suite("Durability warnings")
struct DurabilityWarningTests {
    static func warnings(
        inRecovery: Bool = false,
        standbys: Int = 0,
        names: String = "",
        commit: String? = "on"
    ) -> [String] {
        DatabaseDurability(
            inRecovery: inRecovery,
            streamingStandbys: standbys,
            synchronousStandbyNames: names,
            synchronousCommit: commit
        ).warnings
    }

    @Test("no standby, or a synchronous one, with synchronous_commit on or remote_apply: nothing to say")
    func promiseHolds() {
        #expect(Self.warnings().isEmpty)
        #expect(Self.warnings(standbys: 1, names: "*").isEmpty)
        #expect(Self.warnings(standbys: 2, names: "ANY 1 (s1, s2)", commit: "remote_apply").isEmpty)
        // Not judged on a session other than the leader's.
        #expect(Self.warnings(standbys: 1, names: "*", commit: nil).isEmpty)
    }

    @Test("standbys streaming with synchronous_standby_names empty: replication is asynchronous")
    func asynchronousReplication() {
        let warnings = Self.warnings(standbys: 2, names: "  ")
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("replication is asynchronous: 2 standbys stream") == true)
        #expect(warnings.first?.contains("exactly once does not survive a failover") == true)
    }

    @Test("synchronous_standby_names set but no standby connected: every commit waits")
    func synchronousWithoutStandby() {
        let warnings = Self.warnings(names: "FIRST 1 (s1)")
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("no standby is connected") == true)
    }

    @Test(
        "the leader's session below synchronous_commit on is warned about",
        arguments: ["off", "local", "remote_write"]
    )
    func weakCommit(_ setting: String) {
        let warnings = Self.warnings(standbys: 1, names: "*", commit: setting)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("synchronous_commit is '\(setting)'") == true)
    }

    @Test("a standby is named as one, and its lack of standbys of its own is no news")
    func standby() {
        let warnings = Self.warnings(inRecovery: true, names: "*")
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("is a standby (in recovery)") == true)
    }
}
