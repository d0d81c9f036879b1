import Foundation

// Talking to the booted systemd: commands run inside its namespace, `systemctl` and `journalctl`,
// a unit's properties, waiting for a unit's state, and the journal's entries.

extension SystemdSandbox {
    /// Runs a command inside the namespace (`nsenter -t PID -m -p`).
    public func run(
        _ command: [String],
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> SystemdCommandResult {
        try await SystemdCommand.run(
            ["/usr/bin/nsenter", "-t", String(pid), "-m", "-p", "--"] + command,
            environment: environment,
            timeout: timeout
        )
    }

    public func systemctl(_ arguments: String...) async throws -> SystemdCommandResult {
        try await run(["/bin/systemctl", "--no-pager"] + arguments)
    }

    public func journalctl(_ arguments: String...) async throws -> SystemdCommandResult {
        try await run(["/bin/journalctl", "--no-pager"] + arguments)
    }

    /// `systemctl show -p NAME… UNIT`, as a dictionary of the properties named.
    public func properties(_ names: [String], of unit: String) async throws -> [String: String] {
        let shown = try await run(["/bin/systemctl", "--no-pager", "show"] + names.map { "--property=\($0)" } + [unit])
        var values: [String: String] = [:]
        for line in shown.stdout.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    /// `systemctl show -p NAME --value UNIT`.
    public func property(_ name: String, of unit: String) async throws -> String {
        try await systemctl("show", "--property=\(name)", "--value", unit).output
    }

    /// Waits until `unit`'s `ActiveState` is `state` (e.g. `active`, `inactive`, `failed`).
    @discardableResult
    public func waitFor(
        unit: String,
        activeState state: String,
        timeout: Duration = .seconds(20)
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            last = try await property("ActiveState", of: unit)
            if last == state { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        let status = (try? await systemctl("status", unit).stdout) ?? ""
        throw SystemdHarnessError("\(unit) is \(last), not \(state), after \(timeout):\n\(status)")
    }

    /// Entries of the namespace's journal matching `matches` (`FIELD=value`), every field as a
    /// string (`journalctl -o json`; binary or multi-line values are decoded as UTF-8).
    public func journalEntries(_ matches: [String]) async throws -> [[String: String]] {
        try await SystemdJournalJSON.entries(matches) { try await run($0) }
    }
}
