import Foundation

// Postgres's own programs, as the test clusters run them: where they are installed, and how one
// runs to completion as the `postgres` user when the tests run as root.

/// Where the server binaries are and whom they must run as.
struct Tools: Sendable {
    let binDirectory: String
    /// Set when running as root: initdb and the server refuse root, so they run as `postgres`.
    let postgresUser: (uid: uid_t, gid: gid_t)?

    var initdb: String { binDirectory + "/initdb" }
    var pgCtl: String { binDirectory + "/pg_ctl" }
    var pgBasebackup: String { binDirectory + "/pg_basebackup" }

    static func find() throws -> Tools {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let configured = environment["CITRUS_PG_BINDIR"] { candidates.append(configured) }
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            let sorted = versions.compactMap { Int($0) }.sorted(by: >)
            candidates += sorted.map { "/usr/lib/postgresql/\($0)/bin" }
        }
        candidates += ["/usr/local/pgsql/bin", "/usr/bin"]
        guard
            let binDirectory = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") })
        else {
            throw ClusterError(
                "no initdb found (looked in \(candidates.joined(separator: ", "))); install postgresql-15"
            )
        }
        var postgresUser: (uid: uid_t, gid: gid_t)?
        if getuid() == 0 {
            guard let entry = getpwnam("postgres") else {
                throw ClusterError("running as root but there is no postgres user")
            }
            postgresUser = (entry.pointee.pw_uid, entry.pointee.pw_gid)
        }
        return Tools(binDirectory: binDirectory, postgresUser: postgresUser)
    }

    /// Runs a tool to completion without blocking a cooperative thread; throws with its output
    /// when it fails. (posix_spawn and a blocking waitpid on a thread of its own: Foundation's
    /// Process sometimes never reports the exit of a short-lived child here.)
    func run(_ executable: String, _ arguments: [String], asPostgres: Bool) async throws {
        let argv =
            asPostgres && postgresUser != nil
            ? ["/usr/sbin/runuser", "-u", "postgres", "--", executable] + arguments
            : [executable] + arguments
        let outputPath = FileManager.default.temporaryDirectory.path + "/citrus-tool-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try await Self.spawnAndWait(argv, outputPath: outputPath)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            throw ClusterError("\(argv.joined(separator: " ")) exited \(status): \(text)")
        }
    }

    private static func spawnAndWait(_ argv: [String], outputPath: String) async throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
        guard spawned == 0 else { throw ClusterError("cannot start \(argv[0]): error \(spawned)") }
        let child = pid
        return await withCheckedContinuation { continuation in
            let waiter = Thread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0, errno == EINTR {}
                // WIFEXITED / WEXITSTATUS, spelled out (they are macros in C).
                let exited = (status & 0x7f) == 0
                continuation.resume(returning: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
            waiter.start()
        }
    }
}
