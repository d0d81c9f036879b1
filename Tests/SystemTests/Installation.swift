import CitrusTestKit
import Foundation
import Testing

/// The repository root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The daemon installed by `deploy/install.sh --root DIR`: binary, unit, catalog, environment file
/// and credential, laid out as on a host but under `DIR`.
///
/// `DIR` is under `.build`, not the temporary directory: the systemd sandbox sees the host's file
/// system read-only, except `/tmp`, `/run` and `/var/log`, which are fresh and private to it.
struct Installation {
    let root: URL

    var binary: String { root.path + "/usr/local/bin/citrus-reconciler" }
    var configurationDirectory: String { root.path + "/etc/citrus-reconciler" }
    var environmentFile: String { configurationDirectory + "/citrus-reconciler.env" }
    var tokenFile: String { configurationDirectory + "/digitalocean-token" }
    var unitFile: String { root.path + "/usr/lib/systemd/system/citrus-reconciler.service" }
    /// The journal catalog `install.sh` compiled (`journalctl --root --update-catalog`).
    var catalogDatabase: String { root.path + "/var/lib/systemd/catalog/database" }

    /// Runs `deploy/install.sh --root … --binary <built daemon> --token-from-stdin`, the token on
    /// stdin from a file that is removed straight after.
    static func install(token: String) async throws -> Installation {
        let root = repositoryRoot.appendingPathComponent(
            ".build/citrus-system-\(UUID().uuidString.prefix(8).lowercased())"
        )
        try FileManager.default.createDirectory(
            at: root,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        let installation = Installation(root: root)
        do {
            let tokenInput = root.appendingPathComponent("token-input")
            _ = FileManager.default.createFile(
                atPath: tokenInput.path,
                contents: Data((token + "\n").utf8),
                attributes: [.posixPermissions: 0o600]
            )
            defer { try? FileManager.default.removeItem(at: tokenInput) }
            let install = try await SystemdCommand.run(
                [
                    "/bin/sh", "-c", "exec /bin/sh \"$0\" --root \"$1\" --binary \"$2\" --token-from-stdin <\"$3\"",
                    repositoryRoot.appendingPathComponent("deploy/install.sh").path, root.path,
                    try BuiltProducts.executable(named: "citrus-reconciler").path, tokenInput.path,
                ],
                timeout: .seconds(120)
            )
            guard install.succeeded else { throw SystemdHarnessError("install.sh failed: \(install)") }
            guard !install.stdout.contains(token), !install.stderr.contains(token) else {
                throw SystemdHarnessError("install.sh printed the token")
            }
            return installation
        } catch {
            installation.remove()
            throw error
        }
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }

    /// Replaces the example environment file with `variables`, keeping install.sh's mode (0600).
    func writeEnvironment(_ variables: KeyValuePairs<String, String>) throws {
        let text = "# written by the system test\n" + variables.map { "\($0.key)=\($0.value)\n" }.joined()
        try text.write(toFile: environmentFile, atomically: false, encoding: .utf8)
    }

    /// The installed unit, with paths pointing into this installation and the timings shortened so
    /// the test runs in seconds. Every other directive (hardening, Type=, Restart=,
    /// RestartPreventExitStatus=, NotifyAccess=) is kept exactly as shipped.
    ///
    /// - `arguments`: appended to `citrus-reconciler run`.
    /// - `loadsToken`: false drops `LoadCredential=`, for a unit with no token at all.
    func unit(arguments: [String] = [], loadsToken: Bool = true) throws -> String {
        let shipped = try String(contentsOfFile: unitFile, encoding: .utf8)
        let replacements: [String: String] = [
            "ExecStart=/usr/local/bin/citrus-reconciler run": (["ExecStart=\(binary) run"] + arguments).joined(
                separator: " "
            ),
            "EnvironmentFile=-/etc/citrus-reconciler/citrus-reconciler.env": "EnvironmentFile=-\(environmentFile)",
            "LoadCredential=digitalocean-token:/etc/citrus-reconciler/digitalocean-token":
                loadsToken
                ? "LoadCredential=digitalocean-token:\(tokenFile)" : "# (no LoadCredential= in this test unit)",
            // Short enough to see the watchdog fire within the test; cores of a debug build are not wanted.
            "WatchdogSec=30s": "WatchdogSec=4s\nLimitCORE=0",
            "RestartSec=5s": "RestartSec=2s",
            "TimeoutAbortSec=15s": "TimeoutAbortSec=5s",
            "TimeoutStopSec=60s": "TimeoutStopSec=20s",
        ]
        var used: [String: Int] = [:]
        let lines = shipped.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            // The reload step copies the token's source file: this installation's, like LoadCredential=.
            if line.hasPrefix("ExecReload=+") {
                used["ExecReload=+", default: 0] += 1
                return line.replacingOccurrences(
                    of: " /etc/citrus-reconciler/digitalocean-token ",
                    with: " \(tokenFile) "
                )
            }
            guard let replacement = replacements[String(line)] else { return String(line) }
            used[String(line), default: 0] += 1
            return replacement
        }
        for key in Array(replacements.keys) + ["ExecReload=+"] where used[key] != 1 {
            throw SystemdHarnessError(
                "the shipped unit has \(used[key] ?? 0) lines \"\(key)\"; the system test expects exactly one"
            )
        }
        return lines.joined(separator: "\n")
    }
}

/// `psql`, for running `deploy/database-role.sql` as an operator would.
func findPsql() throws -> String {
    var candidates: [String] = []
    if let configured = ProcessInfo.processInfo.environment["CITRUS_PG_BINDIR"] {
        candidates.append(configured + "/psql")
    }
    if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
        candidates += versions.compactMap { Int($0) }.sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin/psql" }
    }
    candidates += ["/usr/bin/psql", "/usr/local/pgsql/bin/psql"]
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw SystemdHarnessError("no psql found (looked in \(candidates.joined(separator: ", ")))")
    }
    return found
}

extension SystemdSandbox {
    /// Several properties of `unit` at once (`systemctl show -p A -p B UNIT`).
    func properties(_ names: [String], of unit: String) async throws -> [String: String] {
        let result = try await systemctl(["show"] + names.map { "--property=\($0)" } + [unit])
        guard result.succeeded else { throw SystemdHarnessError("systemctl show failed: \(result)") }
        var values: [String: String] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    func systemctl(_ arguments: [String]) async throws -> SystemdCommandResult {
        try await run(["/bin/systemctl", "--no-pager"] + arguments)
    }
}
