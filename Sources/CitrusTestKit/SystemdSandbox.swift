import Foundation

/// A real systemd running as PID 1 of a new PID + mount (+ UTS, IPC) namespace, for tests that
/// need the service manager itself: `Type=notify`, `WATCHDOG=1`, `systemctl`, `journalctl -u`.
///
/// Boot follows `docs/systemd-in-a-namespace.md`, with guards so the machine is left as it was (a
/// bare boot runs sysinit.target, whose tmpfiles, utmp and journal-flush units would otherwise act
/// on the host's shared filesystem):
/// - every unit that any `.wants`/`.requires` directory pulls in is masked, except journald's;
///   units under test get `DefaultDependencies=no`, so sysinit.target is never started;
/// - inside the namespace, `/run`, `/tmp`, `/var/tmp`, `/var/log` and `/var/lib/systemd` are
///   fresh tmpfs mounts, and the root file system and `/proc/sys` are read-only;
/// - systemd runs in its own cgroup `citrus-test-<id>`, removed at teardown.
/// The network namespace is the host's, so units can reach services on 127.0.0.1.
///
/// Always end it with ``shutdown()`` (or use ``withSystemdSandbox(units:start:_:)``): SIGKILL to
/// its PID 1 ends every process in the namespace; teardown waits for that.
public final class SystemdSandbox: Sendable {
    /// Name of the target the sandbox boots into.
    public static let targetName = "citrus-test.target"

    /// systemd's PID as seen from the host (PID 1 inside).
    public let pid: pid_t
    /// `pid:[inode]` of the namespace: lets a test check that nothing is left behind.
    public let pidNamespace: String
    private let launcher: Process
    private let launcherExit: SystemdProcessExit
    private let directory: URL
    /// The cgroup (in each hierarchy under /sys/fs/cgroup) the sandbox runs in; removed at teardown.
    public let cgroupName: String

    private init(
        pid: pid_t,
        pidNamespace: String,
        launcher: Process,
        launcherExit: SystemdProcessExit,
        directory: URL,
        cgroupName: String
    ) {
        self.pid = pid
        self.pidNamespace = pidNamespace
        self.launcher = launcher
        self.launcherExit = launcherExit
        self.directory = directory
        self.cgroupName = cgroupName
    }

    /// Boots systemd with `units` (file name → contents) in its private `/run/systemd/system`,
    /// into a target that requires `systemd-journald.socket` and every name in `start`.
    /// Returns once `systemctl` can talk to the manager.
    public static func boot(
        units: [String: String],
        start: [String],
        timeout: Duration = .seconds(30)
    ) async throws -> SystemdSandbox {
        let support = SystemdCommand.namespaceSupport
        guard support.supported else { throw SystemdHarnessError(support.reason) }

        let id = UUID().uuidString.prefix(8).lowercased()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "citrus-systemd-\(id)",
            isDirectory: true
        )
        let unitDirectory = directory.appendingPathComponent("units", isDirectory: true)
        try FileManager.default.createDirectory(at: unitDirectory, withIntermediateDirectories: true)
        var all = units
        all[targetName] = """
            [Unit]
            Description=citrus test harness
            DefaultDependencies=no
            Requires=systemd-journald.socket \(start.joined(separator: " "))
            After=systemd-journald.socket

            """
        for (name, contents) in all {
            try contents.write(to: unitDirectory.appendingPathComponent(name), atomically: true, encoding: .utf8)
            let dropIn = unitDirectory.appendingPathComponent("\(name).d", isDirectory: true)
            try FileManager.default.createDirectory(at: dropIn, withIntermediateDirectories: true)
            try "[Unit]\nDefaultDependencies=no\n".write(
                to: dropIn.appendingPathComponent("zz-citrus-test.conf"),
                atomically: true,
                encoding: .utf8
            )
        }

        // systemd makes its cgroups under its own; this one is removed at teardown. Without it,
        // they would land at the root of the host's hierarchies.
        let cgroupName = "citrus-test-\(id)"
        var cgroupPaths: [String] = []
        for hierarchy in ["systemd", "unified"] {
            let root = "/sys/fs/cgroup/\(hierarchy)"
            if FileManager.default.fileExists(atPath: "\(root)/cgroup.procs") {
                try FileManager.default.createDirectory(
                    atPath: "\(root)/\(cgroupName)",
                    withIntermediateDirectories: false
                )
                cgroupPaths.append("\(root)/\(cgroupName)")
            }
        }
        guard !cgroupPaths.isEmpty else {
            throw SystemdHarnessError("no systemd or unified cgroup hierarchy under /sys/fs/cgroup")
        }

        let script = bootScript(unitDirectory: unitDirectory.path, cgroupPaths: cgroupPaths)
        let log = directory.appendingPathComponent("boot.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        defer { try? logHandle.close() }

        let launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        launcher.arguments = [
            "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--uts", "--ipc", "--propagation", "private",
            "/bin/sh", "-c", script,
        ]
        launcher.standardInput = FileHandle.nullDevice
        launcher.standardOutput = logHandle
        launcher.standardError = logHandle
        var environment = ProcessInfo.processInfo.environment
        for variable in [
            "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
        ] {
            environment[variable] = nil
        }
        launcher.environment = environment
        let launcherExit = SystemdProcessExit(launcher)
        try launcher.run()

        let deadline = ContinuousClock.now + timeout
        func bootLog() -> String {
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").suffix(3000).description
        }
        func abandon() async {
            kill(launcher.processIdentifier, SIGKILL)
            _ = await launcherExit.wait()
            removeCgroups(named: cgroupName)
            try? FileManager.default.removeItem(at: directory)
        }

        // The forked child of unshare becomes systemd once the script execs it.
        var systemdPID: pid_t = 0
        while systemdPID == 0 {
            if launcherExit.hasExited {
                let text = bootLog()
                await abandon()
                throw SystemdHarnessError("systemd sandbox exited during boot: \(text)")
            }
            if ContinuousClock.now > deadline {
                let text = bootLog()
                await abandon()
                throw SystemdHarnessError("systemd did not start within \(timeout): \(text)")
            }
            if let child = childProcess(of: launcher.processIdentifier),
                (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8))?.hasPrefix("systemd") == true
            {
                systemdPID = child
            } else {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        let namespace = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(systemdPID)/ns/pid")) ?? ""
        let sandbox = SystemdSandbox(
            pid: systemdPID,
            pidNamespace: namespace,
            launcher: launcher,
            launcherExit: launcherExit,
            directory: directory,
            cgroupName: cgroupName
        )

        // Ready for commands once the manager answers on its private socket.
        while true {
            if let answer = try? await sandbox.systemctl("show", "--property=Version", "--value"), answer.succeeded {
                return sandbox
            }
            if ContinuousClock.now > deadline || launcherExit.hasExited {
                let text = bootLog()
                await sandbox.shutdown()
                throw SystemdHarnessError("systemd did not answer within \(timeout): \(text)")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    static func bootScript(unitDirectory: String, cgroupPaths: [String]) -> String {
        """
        set -eu
        mount -n -t tmpfs -o mode=0755 tmpfs /run
        mkdir -p /run/systemd/system
        # Mask everything that is pulled in by .wants/.requires directories, except journald.
        for dir in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system /usr/local/lib/systemd/system; do
            for link in "$dir"/*.wants/* "$dir"/*.requires/*; do
                [ -e "$link" ] || [ -L "$link" ] || continue
                name=${link##*/}
                case "$name" in systemd-journald*) continue ;; esac
                ln -sf /dev/null "/run/systemd/system/$name"
            done
        done
        for unit in '\(unitDirectory)'/*; do
            name=${unit##*/}
            rm -rf "/run/systemd/system/$name"
            cp -R "$unit" "/run/systemd/system/$name"
        done
        for dir in /tmp /var/tmp /var/log /var/lib/systemd; do
            if [ -d "$dir" ]; then mount -n -t tmpfs -o mode=0755 tmpfs "$dir"; fi
        done
        chmod 1777 /tmp /var/tmp
        mount -n -o remount,bind,ro /
        # PID 1 raises some host-wide sysctls (net.unix.max_dgram_qlen, fs.nr_open); not ours to change.
        mount -n --bind /proc/sys /proc/sys
        mount -n -o remount,bind,ro /proc/sys
        # In a container systemd leaves propagation alone, but it moves mounts made in helper
        # namespaces (credentials) into place through shared propagation. These peer groups are
        # new and exist only in this namespace; the host's mounts stay private to it.
        mount -n --make-rshared /
        \(cgroupPaths.map { "echo 0 > '\($0)/cgroup.procs'" }.joined(separator: "\n        "))
        export container=citrus-test
        exec /lib/systemd/systemd --system --unit=\(targetName) --log-target=console --show-status=no
        """
    }

    /// SIGKILLs the namespace's PID 1 (which ends every process in it), waits for the launcher,
    /// removes the sandbox's cgroups and files. Safe to call more than once.
    public func shutdown() async {
        guard await launcherExit.killOnce(pid) else { return }
        Self.removeCgroups(named: cgroupName)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Removes `citrus-test-<id>` trees from every cgroup hierarchy, deepest first. Cgroups empty
    /// out a moment after their last process dies, so this retries briefly.
    static func removeCgroups(named name: String) {
        let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
        for attempt in 0..<50 {
            var remaining = false
            for hierarchy in hierarchies {
                let root = "/sys/fs/cgroup/\(hierarchy)/\(name)"
                guard FileManager.default.fileExists(atPath: root) else { continue }
                var directories = [root]
                if let enumerator = FileManager.default.enumerator(atPath: root) {
                    while let item = enumerator.nextObject() as? String {
                        var isDirectory: ObjCBool = false
                        let path = "\(root)/\(item)"
                        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
                            isDirectory.boolValue
                        {
                            directories.append(path)
                        }
                    }
                }
                for directory in directories.sorted(by: { $0.count > $1.count })
                where rmdir(directory) != 0 && errno != ENOENT {
                    remaining = true
                }
            }
            if !remaining { return }
            if attempt < 49 { usleep(100_000) }
        }
    }

    static func childProcess(of parent: pid_t) -> pid_t? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let candidate = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after "comm)": state, ppid, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == parent { return candidate }
        }
        return nil
    }

    /// Host PIDs of processes still in the PID namespace `namespace` (`pid:[inode]`).
    public static func processes(inNamespace namespace: String) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry in
            guard let candidate = pid_t(entry),
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/ns/pid")) == namespace
            else { return nil }
            return candidate
        }
    }
}

/// Boots a ``SystemdSandbox``, runs `body`, and always shuts the sandbox down, also when `body`
/// throws.
public func withSystemdSandbox<T>(
    units: [String: String],
    start: [String],
    _ body: (SystemdSandbox) async throws -> T
) async throws -> T {
    let sandbox = try await SystemdSandbox.boot(units: units, start: start)
    do {
        let value = try await body(sandbox)
        await sandbox.shutdown()
        return value
    } catch {
        await sandbox.shutdown()
        throw error
    }
}

/// Parses `journalctl -o json` output: one object per line.
public enum SystemdJournalJSON {
    /// Reads entries matching `matches` with journalctl, run by `run` inside the right namespace.
    public static func entries(
        _ matches: [String],
        run: (_ command: [String]) async throws -> SystemdCommandResult
    ) async throws -> [[String: String]] {
        // journald may still be writing what a client just sent; --sync waits for it.
        _ = try await run(["/bin/journalctl", "--sync"])
        let result = try await run(["/bin/journalctl", "--no-pager", "-o", "json", "--all"] + matches)
        guard result.succeeded else { throw SystemdHarnessError("journalctl failed: \(result)") }
        return try parse(result.stdout)
    }

    public static func parse(_ text: String) throws -> [[String: String]] {
        try text.split(separator: "\n").compactMap { line -> [String: String]? in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                return nil
            }
            var entry: [String: String] = [:]
            for (key, value) in object {
                switch value {
                case let string as String:
                    entry[key] = string
                case let bytes as [Any]:
                    // Values that are not plain text (multi-line, binary) come as byte arrays.
                    let decoded = bytes.compactMap { ($0 as? NSNumber)?.uint8Value }
                    if decoded.count == bytes.count {
                        entry[key] = String(decoding: decoded, as: UTF8.self)
                    }
                default:
                    entry[key] = "\(value)"
                }
            }
            return entry
        }
    }
}
