import Foundation
import Postgres
import Synchronization

/// A throwaway Postgres server for tests: its own data directory under the temporary directory,
/// listening on 127.0.0.1 on a free port, with a socket directory inside its own directory.
///
/// Every test gets its own database (`createDatabase()`); tests that restart the server use a
/// cluster of their own (`withPostgresCluster`). Directories are named `citrus-pg-*` and hold an
/// `owner.pid`, so `scripts/test.sh` can remove clusters whose test process died.
public final class PostgresCluster: Sendable {
    /// Directory names start with this; the test script sweeps orphans by it.
    public static let directoryPrefix = "citrus-pg-"

    public let directory: String
    public let port: Int
    public let host = "127.0.0.1"
    public var dataDirectory: String { directory + "/data" }
    public var logFile: String { directory + "/postgres.log" }

    private let tools: Tools
    private let databaseCount = Mutex(0)

    private init(directory: String, port: Int, tools: Tools) {
        self.directory = directory
        self.port = port
        self.tools = tools
    }

    /// Creates and starts a new cluster. Call `destroy()` (or use `withPostgresCluster`).
    public static func start() async throws -> PostgresCluster {
        let tools = try Tools.find()
        let directory = try makeDirectory(owner: tools.postgresUser)
        do {
            let cluster = PostgresCluster(directory: directory, port: try freePort(), tools: tools)
            try await cluster.initialize()
            try await cluster.start()
            return cluster
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// A libpq URI for `database` as the superuser `postgres` (trust authentication).
    public func url(database: String = "postgres") -> String {
        "postgresql://postgres@\(host):\(port)/\(database)"
    }

    /// Creates a fresh, empty database and returns its URI.
    public func createDatabase() async throws -> String {
        let number = databaseCount.withLock { count in
            count += 1
            return count
        }
        let name = "test_\(number)_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try await PostgresConnection.connect(url())
        try await admin.query("CREATE DATABASE \(identifier: name)")
        await admin.close()
        return url(database: name)
    }

    /// Starts the server (again) on the same port and data directory.
    public func start() async throws {
        try await tools.run(
            tools.pgCtl,
            ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "start"],
            asPostgres: true
        )
    }

    /// Stops the server, disconnecting every client (`-m fast`).
    public func stop() async throws {
        try await tools.run(
            tools.pgCtl,
            ["-D", dataDirectory, "-w", "-t", "60", "-m", "fast", "stop"],
            asPostgres: true
        )
    }

    public func restart() async throws {
        try await stop()
        try await start()
    }

    /// Stops the server as a crash would (`-m immediate`): every backend ends at once, nothing is
    /// flushed or checkpointed, and the next start recovers from the WAL.
    public func stopImmediately() async throws {
        try await tools.run(
            tools.pgCtl,
            ["-D", dataDirectory, "-w", "-t", "60", "-m", "immediate", "stop"],
            asPostgres: true
        )
    }

    // MARK: Replication

    /// A streaming standby of this server, started: a base backup taken with `pg_basebackup -R`
    /// (which makes it a standby of this one), in its own directory and on its own port, hot (it
    /// answers reads). It streams asynchronously until this server names it in
    /// `synchronous_standby_names` (`requireSynchronousStandby()`). Destroy it as any cluster.
    public func startStandby() async throws -> PostgresCluster {
        let directory = try Self.makeDirectory(owner: tools.postgresUser)
        do {
            let standby = PostgresCluster(directory: directory, port: try Self.freePort(), tools: tools)
            try await tools.run(
                tools.pgBasebackup,
                [
                    "-D", standby.dataDirectory, "-h", host, "-p", String(port), "-U", "postgres", "-X", "stream", "-R",
                    "--no-sync",
                ],
                asPostgres: true
            )
            // The copied configuration is this server's; the last setting of a name wins.
            try standby.appendSettings(
                """

                # citrus test standby
                port = \(standby.port)
                unix_socket_directories = '\(directory)'
                hot_standby = on
                cluster_name = 'citrus_standby'

                """
            )
            try await standby.start()
            return standby
        } catch {
            Self.destroy(directory: directory)
            throw error
        }
    }

    /// Makes every commit that asks for it (`synchronous_commit` on or above `remote_write`) wait
    /// until a standby has it (`synchronous_standby_names = '*'`), and waits until one streams
    /// synchronously. Set on this server alone: a standby promoted later does not inherit it, and
    /// so does not wait for a standby it does not have.
    public func requireSynchronousStandby(timeout: Duration = .seconds(30)) async throws {
        let connection = try await PostgresConnection.connect(url())
        do {
            try await connection.query("ALTER SYSTEM SET synchronous_standby_names = '*'")
            try await connection.query("SELECT pg_reload_conf()")
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let synchronous = try await connection.query(
                    "SELECT count(*) AS n FROM pg_stat_replication WHERE sync_state = 'sync'"
                ).single().decode(Int64.self, "n")
                if synchronous > 0 {
                    await connection.close()
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        throw ClusterError("no standby became synchronous within \(timeout)")
    }

    /// Promotes this standby to a primary and waits until it accepts writes (`pg_ctl promote -w`).
    public func promote() async throws {
        try await tools.run(tools.pgCtl, ["-D", dataDirectory, "-w", "-t", "60", "promote"], asPostgres: true)
    }

    /// Stops the server at once and removes the whole directory.
    public func destroy() {
        Self.destroy(directory: directory)
    }

    // MARK: Setup

    private func initialize() async throws {
        try await tools.run(
            tools.initdb,
            [
                "-D", dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync",
                "--no-instructions",
            ],
            asPostgres: true
        )
        try appendSettings(
            """

            # citrus test cluster
            listen_addresses = '\(host)'
            port = \(port)
            unix_socket_directories = '\(directory)'
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            shared_buffers = 16MB
            max_connections = 200
            log_min_messages = warning

            """
        )
    }

    private func appendSettings(_ settings: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDirectory + "/postgresql.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(settings.utf8))
        try handle.close()
    }

    private static func makeDirectory(owner: (uid: uid_t, gid: gid_t)?) throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/" + directoryPrefix + "XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw ClusterError("mkdtemp failed: errno \(errno)") }
        let directory = String(cString: made)
        try "\(getpid())\n".write(toFile: directory + "/owner.pid", atomically: true, encoding: .utf8)
        if let owner {
            guard chown(directory, owner.uid, owner.gid) == 0 else {
                throw ClusterError("chown \(directory) failed: errno \(errno)")
            }
        }
        return directory
    }

    /// Asks the kernel for a free port on 127.0.0.1 (bind to port 0), then releases it.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError("socket failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw ClusterError("bind failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ClusterError("getsockname failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Kills the postmaster of `directory` (SIGQUIT: immediate shutdown), waits briefly for it to
    /// go, and removes the directory. Synchronous so it can run at process exit.
    static func destroy(directory: String) {
        if let pidFile = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
            let line = pidFile.split(separator: "\n").first, let pid = pid_t(line.trimmingCharacters(in: .whitespaces))
        {
            if kill(pid, SIGQUIT) == 0 {
                for _ in 0..<100 where kill(pid, 0) == 0 {
                    usleep(20_000)
                }
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: The process-wide shared cluster

    private static let shared = SharedCluster()

    /// One cluster for the whole test process, for tests that do not stop or restart the
    /// server. It is destroyed when the process exits.
    public static func shared() async throws -> PostgresCluster {
        try await shared.get()
    }
}

/// Runs `body` with a new cluster of its own and destroys the cluster afterwards, also when
/// `body` throws.
public func withPostgresCluster<Value>(
    _ body: (PostgresCluster) async throws -> Value
) async throws -> Value {
    let cluster = try await PostgresCluster.start()
    defer { cluster.destroy() }
    return try await body(cluster)
}

/// Runs `body` with a primary and a streaming standby of it, both new, and destroys both
/// afterwards, also when `body` throws. Replication is asynchronous until the test asks for a
/// synchronous standby (`primary.requireSynchronousStandby()`).
public func withReplicatedPostgres<Value>(
    _ body: (_ primary: PostgresCluster, _ standby: PostgresCluster) async throws -> Value
) async throws -> Value {
    try await withPostgresCluster { primary in
        let standby = try await primary.startStandby()
        defer { standby.destroy() }
        return try await body(primary, standby)
    }
}

/// Creates a database on the shared cluster and passes its URI to `body`.
public func withTestDatabase<Value>(_ body: (String) async throws -> Value) async throws -> Value {
    let cluster = try await PostgresCluster.shared()
    return try await body(try await cluster.createDatabase())
}

public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

private let sharedDirectories = Mutex<[String]>([])

private actor SharedCluster {
    private var starting: Task<PostgresCluster, any Error>?

    func get() async throws -> PostgresCluster {
        if let starting { return try await starting.value }
        let task = Task {
            let cluster = try await PostgresCluster.start()
            let first = sharedDirectories.withLock { directories in
                directories.append(cluster.directory)
                return directories.count == 1
            }
            if first {
                atexit {
                    for directory in sharedDirectories.withLock({ $0 }) {
                        PostgresCluster.destroy(directory: directory)
                    }
                }
            }
            return cluster
        }
        starting = task
        return try await task.value
    }
}
