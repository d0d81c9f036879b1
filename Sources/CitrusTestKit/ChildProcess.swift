import Foundation

/// A program the tests start (the real daemon binary, the simulator binary), with its output in a
/// file, and the means to kill it the way the world would.
public final class ChildProcess: @unchecked Sendable {
    public let executable: URL
    public let arguments: [String]
    public let environment: [String: String]
    public let logFile: URL
    private let process = Process()
    private let lock = NSLock()

    public init(executable: URL, arguments: [String], environment: [String: String], logFile: URL) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.logFile = logFile
    }

    public func start() throws {
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logFile)
        handle.seekToEndOfFile()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// The exit status, once it has exited (nil while running; a signal shows as 128 + signal).
    public var exitStatus: Int32? {
        guard !process.isRunning else { return nil }
        return process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
    }

    public func signal(_ signal: Int32) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit; returns its status, or nil if it is still running at the deadline.
    @discardableResult
    public func waitForExit(timeout: Duration) async -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return exitStatus
    }

    /// SIGTERM, then SIGKILL if it has not gone after `grace`. Always leaves nothing running.
    public func stop(grace: Duration = .seconds(10)) async {
        signal(SIGTERM)
        if await waitForExit(timeout: grace) == nil {
            signal(SIGKILL)
            await waitForExit(timeout: .seconds(10))
        }
    }

    public var output: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

public enum BuiltProducts {
    /// The directory holding the package's built executables: the one the test bundle runs from.
    public static var directory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    public struct Missing: Error, CustomStringConvertible {
        public var name: String
        public var description: String {
            "\(name) is not built next to the tests; run `swift build --build-tests` first"
        }
    }

    public static func executable(named name: String) throws -> URL {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else { throw Missing(name: name) }
        return url
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(
    timeout: Duration,
    every interval: Duration = .milliseconds(100),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if try await condition() { return true }
        if clock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}
