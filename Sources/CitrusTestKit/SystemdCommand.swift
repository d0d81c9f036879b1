import Foundation
import Synchronization

/// The outcome of a finished command.
public struct SystemdCommandResult: Sendable, CustomStringConvertible {
    public var arguments: [String]
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public var succeeded: Bool { status == 0 }
    /// stdout without surrounding whitespace: what `systemctl show --value` prints.
    public var output: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }

    public var description: String {
        "\(arguments.joined(separator: " ")) exited \(status); stdout: \(stdout.suffix(2000)) stderr: \(stderr.suffix(2000))"
    }
}

public struct SystemdHarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs commands with Foundation `Process` for the systemd harness. Output goes to temporary
/// files (not pipes), so a chatty command can never block on a full pipe.
public enum SystemdCommand {
    /// Runs `arguments[0]` (an absolute path) and waits for it, killing it after `timeout`.
    public static func run(
        _ arguments: [String],
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> SystemdCommandResult {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("citrus-cmd-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("stdout")
        let errURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        let exit = SystemdProcessExit(process)
        try process.run()
        let status = try await exit.wait(timeout: timeout)
        return SystemdCommandResult(
            arguments: arguments,
            status: status,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        )
    }

    /// Whether the harness can run here: it needs root (for namespaces and mounts) and the tools.
    public static var namespaceSupport: (supported: Bool, reason: String) {
        guard geteuid() == 0 else {
            return (false, "needs root: booting systemd or journald in a private namespace requires CAP_SYS_ADMIN")
        }
        for tool in ["/usr/bin/unshare", "/usr/bin/nsenter", "/lib/systemd/systemd", "/lib/systemd/systemd-journald"] {
            guard FileManager.default.isExecutableFile(atPath: tool) else { return (false, "\(tool) is missing") }
        }
        return (true, "")
    }
}

/// Waits for a `Process` to end, from `terminationHandler`; set up before `run()`.
final class SystemdProcessExit: Sendable {
    private enum State {
        case running(CheckedContinuation<Int32, Never>?)
        case exited(Int32)
    }

    /// Shared with the termination handler; holds no reference to the process (no cycle).
    private final class Box: Sendable {
        let state = Mutex(State.running(nil))
        let timedOut = Mutex(false)
        let killed = Mutex(false)
    }

    private let box = Box()
    private let describe: String
    private let pid: @Sendable () -> pid_t

    init(_ process: Process) {
        describe = ([process.executableURL?.path ?? "?"] + (process.arguments ?? [])).joined(separator: " ")
        pid = { process.processIdentifier }
        process.terminationHandler = { [box] finished in
            let status =
                finished.terminationReason == .uncaughtSignal
                ? 128 + finished.terminationStatus : finished.terminationStatus
            let waiter: CheckedContinuation<Int32, Never>? = box.state.withLock { current in
                defer { current = .exited(status) }
                if case .running(let continuation) = current { return continuation }
                return nil
            }
            waiter?.resume(returning: status)
        }
    }

    /// SIGKILLs `target` (the sandbox's PID 1 or journald, which takes the namespace with it) the
    /// first time it is called, then waits up to 20 s for this launcher to exit. Returns false,
    /// at once, on every later call: the sandbox was already torn down.
    func killOnce(_ target: pid_t) async -> Bool {
        let first = box.killed.withLock { killed in
            defer { killed = true }
            return !killed
        }
        guard first else { return false }
        kill(target, SIGKILL)
        _ = try? await wait(timeout: .seconds(20))
        return true
    }

    var hasExited: Bool {
        box.state.withLock { if case .exited = $0 { true } else { false } }
    }

    /// The exit status; a signal `n` is reported as `128 + n`.
    func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status: Int32? = box.state.withLock { current in
                switch current {
                case .exited(let status): return status
                case .running:
                    current = .running(continuation)
                    return nil
                }
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Waits at most `timeout`; then SIGKILLs the process, waits for it and throws.
    func wait(timeout: Duration) async throws -> Int32 {
        let pid = self.pid()
        let box = self.box
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if Task.isCancelled { return nil }
                box.timedOut.withLock { $0 = true }
                kill(pid, SIGKILL)
                return nil
            }
            var result: Int32 = -1
            for await value in group {
                if let value {
                    result = value
                    group.cancelAll()
                }
            }
            return result
        }
        if box.timedOut.withLock({ $0 }) {
            throw SystemdHarnessError("\(describe) did not finish within \(timeout); killed")
        }
        return status
    }
}
