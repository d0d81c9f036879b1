import CitrusTestKit
import Foundation
import Testing

@testable import SystemdSupport

let namespaceSupport = SystemdCommand.namespaceSupport

/// Tests against a real journald and a real systemd in private namespaces (see CitrusTestKit's
/// `SystemdSandbox`). They need root; as root they always run.
@Suite(
    "Real journald and systemd",
    .serialized,
    .enabled(if: namespaceSupport.supported, Comment(rawValue: namespaceSupport.reason))
)
struct SystemdSandboxTests {
    @Test func journalHandlerEntriesReadBackWithEveryField() async throws {
        let runID = UUID().uuidString
        try await withSystemdJournalSandbox { journal in
            let child = try await journal.run(
                ChildMode.command,
                environment: ChildMode.journalWriter.environment(runID: runID)
            )
            #expect(child.succeeded, "\(child)")
            #expect(!child.stderr.contains("first line"), "the handler fell back to stderr: \(child.stderr)")

            let entries = try await journal.entries(["CITRUS_TEST_RUN=\(runID)"])
            try #require(entries.count == 3, "\(entries)")

            let audit = try #require(
                try await journal.entries(["MESSAGE_ID=f4e0b00a992e45f7b917baf4526d904d", "CITRUS_TEST_RUN=\(runID)"])
                    .first
            )
            #expect(audit["MESSAGE"] == "server web-1 went from provisioning to active")
            #expect(audit["PRIORITY"] == "5")
            #expect(audit["SYSLOG_IDENTIFIER"] == "citrus-reconciler")
            #expect(audit["LOGGER"] == "citrus.audit")
            #expect(audit["SERVER_ID"] == "0d3c1c2e-57c4-4ab1-9f55-0d1f4b4c3a10")
            #expect(audit["SERVER_NAME"] == "web-1")
            #expect(audit["DROPLET_ID"] == "4242")
            #expect(audit["FROM_STATUS"] == "provisioning")
            #expect(audit["TO_STATUS"] == "active")
            #expect(audit["DO_REQUEST_ID"] == "7c1e-req")
            #expect(audit["CODE_FILE"]?.hasSuffix("ChildProcess.swift") == true)
            #expect(audit["CODE_FUNC"]?.hasPrefix("writeJournalEntries") == true)
            #expect(Int(audit["CODE_LINE"] ?? "") != nil)
            // The journal's own trusted fields prove it came over the native socket from the child.
            #expect(audit["_TRANSPORT"] == "journal")

            let error = try #require(entries.first { $0["PRIORITY"] == "3" })
            #expect(error["MESSAGE"] == "first line\nsecond line")
            #expect(error["LAST_ERROR"] == "422 Unprocessable Entity\nname is invalid")
            #expect(error["DO_REQUEST_ID"] == "r2")

            #expect(entries.contains { $0["PRIORITY"] == "7" && $0["MESSAGE"] == "debug entry" })
            #expect(!entries.contains { $0["MESSAGE"] == "below the level" })
        }
    }

    @Test func smokeNotifyUnitFromShell() async throws {
        let unit = """
            [Service]
            Type=notify
            NotifyAccess=all
            ExecStart=/bin/sh -c 'systemd-notify --ready --status=hello; exec sleep 60'

            """
        var namespace = ""
        try await withSystemdSandbox(units: ["hello.service": unit], start: ["hello.service"]) { systemd in
            namespace = systemd.pidNamespace
            #expect(!SystemdSandbox.processes(inNamespace: namespace).isEmpty)
            try await systemd.waitFor(unit: "hello.service", activeState: "active")
            #expect(try await systemd.property("StatusText", of: "hello.service") == "hello")
            #expect(try await systemd.property("Type", of: "hello.service") == "notify")
            let stop = try await systemd.systemctl("stop", "hello.service")
            #expect(stop.succeeded, "\(stop)")
            try await systemd.waitFor(unit: "hello.service", activeState: "inactive")
        }
        #expect(!namespace.isEmpty)
        #expect(SystemdSandbox.processes(inNamespace: namespace).isEmpty, "processes left behind in \(namespace)")
    }

    @Test func sandboxIsTornDownWhenTheTestBodyThrows() async throws {
        struct Boom: Error {}
        let unit = "[Service]\nExecStart=/bin/sleep 60\n"
        var namespace = ""
        var cgroup = ""
        await #expect(throws: Boom.self) {
            try await withSystemdSandbox(units: ["sleeper.service": unit], start: ["sleeper.service"]) { systemd in
                namespace = systemd.pidNamespace
                cgroup = systemd.cgroupName
                #expect(
                    FileManager.default.fileExists(
                        atPath: "/sys/fs/cgroup/systemd/\(cgroup)/system.slice/sleeper.service"
                    )
                )
                try await systemd.waitFor(unit: "sleeper.service", activeState: "active")
                throw Boom()
            }
        }
        #expect(!namespace.isEmpty)
        #expect(SystemdSandbox.processes(inNamespace: namespace).isEmpty, "processes left behind in \(namespace)")
        #expect(!cgroup.isEmpty)
        for hierarchy in try FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup") {
            #expect(
                !FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(hierarchy)/\(cgroup)"),
                "cgroup left behind in \(hierarchy)"
            )
        }
    }

    @Test func notifierAndJournalSelectionUnderRealSystemd() async throws {
        let runID = UUID().uuidString
        let unit = """
            [Service]
            Type=notify
            NotifyAccess=main
            ExecStart=\(ChildMode.command.joined(separator: " "))
            Environment=\(ChildMode.variable)=\(ChildMode.notifyService.rawValue) CITRUS_TEST_RUN=\(runID)
            WatchdogSec=3s
            TimeoutStartSec=60s
            LimitCORE=0

            """
        try await withSystemdSandbox(units: ["citrus-child.service": unit], start: ["citrus-child.service"]) {
            systemd in
            try await systemd.waitFor(unit: "citrus-child.service", activeState: "active", timeout: .seconds(60))
            #expect(try await systemd.property("StatusText", of: "citrus-child.service") == "child ready \(runID)")

            // Longer than WatchdogSec: only the progress-fed pings keep it alive.
            try await Task.sleep(for: .seconds(5))
            #expect(try await systemd.property("ActiveState", of: "citrus-child.service") == "active")
            #expect(try await systemd.property("WatchdogTimestampMonotonic", of: "citrus-child.service") != "0")

            let started = try #require(
                try await systemd.journalEntries(["CITRUS_TEST_RUN=\(runID)", "MESSAGE=child started"]).first
            )
            #expect(started["LOG_FORMAT"] == "journal", "JOURNAL_STREAM matched stderr")
            #expect(started["NOTIFY_ENABLED"] == "true")
            #expect(started["WATCHDOG_INTERVAL_MS"] == "3000")
            #expect(started["_SYSTEMD_UNIT"] == "citrus-child.service")
            #expect(started["SYSLOG_IDENTIFIER"] == "citrus-child")

            let stop = try await systemd.systemctl("stop", "citrus-child.service")
            #expect(stop.succeeded, "\(stop)")
        }
    }

    /// The real unit file, hardening and all, with only `ExecStart=` (this test executable as a
    /// notify service) and the credential's source path changed: a Swift binary must start, log to
    /// the journal, notify, and read its credential as the dynamic user under every restriction.
    @Test func swiftRuntimeRunsUnderTheRealUnitsHardening() async throws {
        let runID = UUID().uuidString
        let credential = repositoryRoot.appendingPathComponent(".build/citrus-test-token-\(runID)")
        try "not-a-real-token".write(to: credential, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: credential) }
        let original = try String(
            contentsOf: repositoryRoot.appendingPathComponent("systemd/citrus-reconciler.service"),
            encoding: .utf8
        )
        var replaced = 0
        let unit = original.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("ExecStart=") {
                replaced += 1
                return "ExecStart=\(ChildMode.command.joined(separator: " "))\n"
                    + "Environment=\(ChildMode.variable)=\(ChildMode.notifyService.rawValue) CITRUS_TEST_RUN=\(runID)"
            }
            if line.hasPrefix("LoadCredential=") {
                replaced += 1
                return "LoadCredential=digitalocean-token:\(credential.path)"
            }
            return String(line)
        }.joined(separator: "\n")
        try #require(replaced == 2)

        try await withSystemdSandbox(units: ["citrus-reconciler.service": unit], start: ["citrus-reconciler.service"]) {
            systemd in
            try await systemd.waitFor(unit: "citrus-reconciler.service", activeState: "active", timeout: .seconds(60))
            #expect(try await systemd.property("StatusText", of: "citrus-reconciler.service") == "child ready \(runID)")
            let started = try #require(
                try await systemd.journalEntries(["CITRUS_TEST_RUN=\(runID)", "MESSAGE=child started"]).first
            )
            #expect(started["LOG_FORMAT"] == "journal")
            #expect(started["WATCHDOG_INTERVAL_MS"] == "30000")
            #expect(started["TOKEN_CREDENTIAL_READABLE"] == "true")
            #expect(started["CHILD_UID"] != "0", "DynamicUser= gives an unprivileged user")
            #expect(
                !(try await systemd.journalctl("-o", "cat", "-u", "citrus-reconciler.service").stdout.contains(
                    "not-a-real-token"
                ))
            )
            let stop = try await systemd.systemctl("stop", "citrus-reconciler.service")
            #expect(stop.succeeded, "\(stop)")
        }
    }

    @Test func stuckLoopIsKilledByTheWatchdog() async throws {
        let runID = UUID().uuidString
        let unit = """
            [Service]
            Type=notify
            NotifyAccess=main
            ExecStart=\(ChildMode.command.joined(separator: " "))
            Environment=\(ChildMode.variable)=\(ChildMode.stuckService.rawValue) CITRUS_TEST_RUN=\(runID)
            WatchdogSec=2s
            TimeoutStartSec=60s
            Restart=no
            LimitCORE=0
            # After the watchdog's SIGABRT, the Swift runtime prints a backtrace; don't wait long for exit.
            TimeoutAbortSec=5s

            """
        try await withSystemdSandbox(units: ["citrus-stuck.service": unit], start: ["citrus-stuck.service"]) {
            systemd in
            try await systemd.waitFor(unit: "citrus-stuck.service", activeState: "failed", timeout: .seconds(60))
            #expect(try await systemd.property("Result", of: "citrus-stuck.service") == "watchdog")
            // It got READY=1 and pings for the first interval: killed by the watchdog, not a start timeout.
            #expect(try await systemd.property("StatusText", of: "citrus-stuck.service") == "child ready \(runID)")
            let critical = try await systemd.journalEntries(["_SYSTEMD_UNIT=citrus-stuck.service", "PRIORITY=2"])
            #expect(critical.contains { $0["MESSAGE"]?.contains("withholding WATCHDOG=1") == true }, "\(critical)")
        }
    }
}
