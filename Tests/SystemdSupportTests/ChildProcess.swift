import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import SystemdSupport

/// The tests below that need a process *inside* a namespace (to reach that namespace's journald
/// with `sd_journal_sendv`, whose socket path is fixed, or to be a unit's main process for
/// `sd_notify`) re-run this test executable there, selecting one of these child tests with
/// `CITRUS_SYSTEMD_TEST_CHILD`. That exercises the real handler and notifier code, unchanged,
/// against a real journald and a real systemd. In a normal run they are skipped.
enum ChildMode: String {
    /// Write known entries with `JournalLogHandler` and exit.
    case journalWriter = "journal-writer"
    /// Be a `Type=notify` service: check the log selection, READY=1 + STATUS=, keep the loop's
    /// watchdog fed, then wait to be stopped.
    case notifyService = "notify-service"
    /// Like `notifyService`, but the "loop" never reports progress, so the watchdog must stop
    /// pinging and systemd must kill the process.
    case stuckService = "stuck-service"

    static let variable = "CITRUS_SYSTEMD_TEST_CHILD"
    static var current: ChildMode? { ProcessInfo.processInfo.environment[variable].flatMap(ChildMode.init(rawValue:)) }
    static var runID: String { ProcessInfo.processInfo.environment["CITRUS_TEST_RUN"] ?? "none" }

    /// The command that runs this test executable with only the child tests selected.
    static var command: [String] {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return [executable, "--testing-library", "swift-testing", "--filter", "SystemdChildProcess"]
    }

    func environment(runID: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment[Self.variable] = rawValue
        environment["CITRUS_TEST_RUN"] = runID
        return environment
    }
}

@Suite("SystemdChildProcess", .serialized)
struct SystemdChildProcess {
    @Test(.enabled(if: ChildMode.current == .journalWriter, "runs only as a child of the journal round-trip test"))
    func writeJournalEntries() {
        let logger = Logger(label: "citrus.audit") {
            JournalLogHandler(label: $0, identifier: "citrus-reconciler", logLevel: .debug, metadataProvider: nil)
        }
        logger.notice(
            "server web-1 went from provisioning to active",
            metadata: [
                "CITRUS_TEST_RUN": "\(ChildMode.runID)",
                "MESSAGE_ID": "f4e0b00a992e45f7b917baf4526d904d",
                "SERVER_ID": "0d3c1c2e-57c4-4ab1-9f55-0d1f4b4c3a10",
                "SERVER_NAME": "web-1",
                "DROPLET_ID": "4242",
                "FROM_STATUS": "provisioning",
                "TO_STATUS": "active",
                "DO_REQUEST_ID": "7c1e-req",
            ]
        )
        logger.error(
            "first line\nsecond line",
            metadata: [
                "CITRUS_TEST_RUN": "\(ChildMode.runID)", "last_error": "422 Unprocessable Entity\nname is invalid",
                "do.request-id": "r2",
            ]
        )
        logger.debug("debug entry", metadata: ["CITRUS_TEST_RUN": "\(ChildMode.runID)"])
        logger.trace("below the level", metadata: ["CITRUS_TEST_RUN": "\(ChildMode.runID)"])
    }

    /// Whether `$CREDENTIALS_DIRECTORY/digitalocean-token` can be read (its length, never its contents).
    static func tokenCredentialReadable() -> String {
        guard let directory = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"] else {
            return "no CREDENTIALS_DIRECTORY"
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/digitalocean-token"))
            return data.isEmpty ? "empty" : "true"
        } catch {
            return "\(directory): \(error)"
        }
    }

    @Test(
        .enabled(
            if: ChildMode.current == .notifyService || ChildMode.current == .stuckService,
            "runs only as a unit in the systemd sandbox"
        )
    )
    func beANotifyService() async throws {
        let notifier = SystemdNotifier()
        let format = LogFormat.auto.resolved()
        let logger = Logger(label: "citrus.child") { label in
            switch format {
            case .journal: JournalLogHandler(label: label, identifier: "citrus-child", metadataProvider: nil)
            case .auto, .text: TextLogHandler(label: label, identifier: "citrus-child", metadataProvider: nil)
            }
        }
        logger.info(
            "child started",
            metadata: [
                "CITRUS_TEST_RUN": "\(ChildMode.runID)",
                "LOG_FORMAT": "\(format.rawValue)",
                "NOTIFY_ENABLED": "\(notifier.isEnabled)",
                "WATCHDOG_INTERVAL_MS":
                    "\(notifier.watchdogInterval.map { $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 } ?? -1)",
                "CHILD_UID": "\(getuid())",
                // Whether LoadCredential= delivered the token; never its contents.
                "TOKEN_CREDENTIAL_READABLE": "\(Self.tokenCredentialReadable())",
            ]
        )
        notifier.extendTimeout(.seconds(20))
        let watchdog = SystemdWatchdog(notifier: notifier, logger: logger)
        notifier.ready(status: "child ready \(ChildMode.runID)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watchdog.run() }
            // The "loop": reports progress unless it is meant to be stuck. Ends when stopped.
            for _ in 0..<600 {
                if ChildMode.current == .notifyService { watchdog.progress() }
                try await Task.sleep(for: .milliseconds(100))
            }
            group.cancelAll()
        }
    }
}
