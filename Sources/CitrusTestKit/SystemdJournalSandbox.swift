import Foundation

/// `systemd-journald` alone in a private mount namespace: its `/run` (and so
/// `/run/systemd/journal/socket`, which `sd_journal_sendv` always uses) is a fresh tmpfs, the
/// journal lives only there, and the root file system is read-only to it. Anything run with
/// ``run(_:environment:timeout:)`` shares that mount namespace, so its `sd_journal_*` calls reach
/// this journald and `journalctl` reads it back with every structured field.
///
/// End it with ``shutdown()`` or use ``withSystemdJournalSandbox(_:)``.
public final class SystemdJournalSandbox: Sendable {
    /// journald's PID (the launcher execs into it, so it is the launched process itself).
    public let pid: pid_t
    private let launcherExit: SystemdProcessExit

    private init(pid: pid_t, launcherExit: SystemdProcessExit) {
        self.pid = pid
        self.launcherExit = launcherExit
    }

    public static func start(timeout: Duration = .seconds(20)) async throws -> SystemdJournalSandbox {
        let support = SystemdCommand.namespaceSupport
        guard support.supported else { throw SystemdHarnessError(support.reason) }
        let script = """
            set -eu
                mount -n -t tmpfs -o mode=0755 tmpfs /run
            mkdir -p /run/systemd/journal
            for dir in /tmp /var/tmp /var/log; do
                if [ -d "$dir" ]; then mount -n -t tmpfs -o mode=0755 tmpfs "$dir"; fi
            done
            chmod 1777 /tmp /var/tmp
            mount -n -o remount,bind,ro /
            exec /lib/systemd/systemd-journald
            """
        let launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        launcher.arguments = ["--mount", "--propagation", "private", "/bin/sh", "-c", script]
        launcher.standardInput = FileHandle.nullDevice
        launcher.standardOutput = FileHandle.nullDevice
        launcher.standardError = FileHandle.nullDevice
        var environment = ProcessInfo.processInfo.environment
        for variable in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"] {
            environment[variable] = nil
        }
        launcher.environment = environment
        let exit = SystemdProcessExit(launcher)
        try launcher.run()
        let sandbox = SystemdJournalSandbox(pid: launcher.processIdentifier, launcherExit: exit)

        // The socket is reachable from here through the process's root.
        let socket = "/proc/\(sandbox.pid)/root/run/systemd/journal/socket"
        let deadline = ContinuousClock.now + timeout
        while !FileManager.default.fileExists(atPath: socket) {
            if exit.hasExited || ContinuousClock.now > deadline {
                await sandbox.shutdown()
                throw SystemdHarnessError("systemd-journald did not create its socket within \(timeout)")
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return sandbox
    }

    /// Runs a command in journald's mount namespace (`nsenter -t PID -m`).
    public func run(
        _ command: [String],
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> SystemdCommandResult {
        try await SystemdCommand.run(
            ["/usr/bin/nsenter", "-t", String(pid), "-m", "--"] + command,
            environment: environment,
            timeout: timeout
        )
    }

    /// Entries matching `matches` (`FIELD=value`), every field as a string.
    public func entries(_ matches: [String]) async throws -> [[String: String]] {
        try await SystemdJournalJSON.entries(matches) { try await run($0) }
    }

    /// SIGKILLs journald and waits for it; its mount namespace and tmpfs go with it.
    public func shutdown() async {
        guard await launcherExit.killOnce(pid) else { return }
    }
}

/// Starts a ``SystemdJournalSandbox``, runs `body`, and always stops journald.
public func withSystemdJournalSandbox<T>(_ body: (SystemdJournalSandbox) async throws -> T) async throws -> T {
    let sandbox = try await SystemdJournalSandbox.start()
    do {
        let value = try await body(sandbox)
        await sandbox.shutdown()
        return value
    } catch {
        await sandbox.shutdown()
        throw error
    }
}
