import CitrusTestKit
import Foundation
import ReconcileCore
import Testing

/// The repository root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite("Unit file, catalog and installer")
struct DeployFilesTests {
    @Test func catalogExplainsEveryAuditKind() throws {
        let text = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/citrus-reconciler.catalog"),
            encoding: .utf8
        )
        let blocks = text.components(separatedBy: "\n-- ").dropFirst()
        var byID: [String: String] = [:]
        for block in blocks {
            let id = String(block.prefix { !$0.isNewline })
            byID[id] = block
        }
        #expect(byID.count == AuditKind.allCases.count)
        for kind in AuditKind.allCases {
            let block = try #require(byID[kind.messageID], "no catalog entry for \(kind)")
            #expect(block.contains("\nSubject: "), "\(kind)")
            #expect(block.contains("\nDefined-By: citrus-reconciler\n"), "\(kind)")
            #expect(block.contains("\nSupport: "), "\(kind)")
            let body = block.components(separatedBy: "\n\n").dropFirst().joined()
            #expect(body.count > 100, "\(kind) needs a body saying what happened and what to do")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/journalctl")))
    func journalctlCompilesTheCatalog() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("citrus-catalog-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let catalogDirectory = root.appendingPathComponent("usr/lib/systemd/catalog")
        try FileManager.default.createDirectory(at: catalogDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: repositoryRoot.appendingPathComponent("deploy/citrus-reconciler.catalog"),
            to: catalogDirectory.appendingPathComponent("citrus-reconciler.catalog")
        )
        let update = try await SystemdCommand.run(["/bin/journalctl", "--root=\(root.path)", "--update-catalog"])
        #expect(update.succeeded, "\(update)")
        #expect(update.stderr.isEmpty, "\(update)")
        let list = try await SystemdCommand.run(["/bin/journalctl", "--root=\(root.path)", "--list-catalog"])
        for kind in AuditKind.allCases {
            #expect(list.stdout.contains(kind.messageID), "\(kind)")
        }
    }

    /// `systemd/check-unit.sh`: verify is clean, the exposure is at most 1.1, and the unit lets the
    /// daemon bind the example environment file's metrics port.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func unitIsHardenedAndVerifies() async throws {
        let check = try await SystemdCommand.run(
            ["/bin/sh", repositoryRoot.appendingPathComponent("systemd/check-unit.sh").path],
            timeout: .seconds(120)
        )
        #expect(check.succeeded, "\(check)")
    }

    @Test func unitHasTheDirectivesTheDaemonRelies() throws {
        let unit = try String(
            contentsOf: repositoryRoot.appendingPathComponent("systemd/citrus-reconciler.service"),
            encoding: .utf8
        )
        let lines = Set(unit.split(separator: "\n").map(String.init))
        for required in [
            "Type=notify", "NotifyAccess=main", "ExecStart=/usr/local/bin/citrus-reconciler run", "WatchdogSec=30s",
            "Restart=on-failure", "RestartPreventExitStatus=78",
            "LoadCredential=digitalocean-token:/etc/citrus-reconciler/digitalocean-token",
            "EnvironmentFile=-/etc/citrus-reconciler/citrus-reconciler.env", "DynamicUser=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "ExecReload=/bin/kill -HUP $MAINPID", "RuntimeDirectory=citrus-reconciler", "RuntimeDirectoryMode=0700",
            "IPAddressDeny=169.254.0.0/16 fe80::/10 224.0.0.0/4 ff00::/8", "LimitCORE=0",
            "MemoryHigh=256M", "MemoryMax=384M", "TasksMax=64", "SocketBindAllow=tcp:9464", "SocketBindDeny=any",
        ] {
            #expect(lines.contains(required), "missing \(required)")
        }
        // The reload step copies the same file LoadCredential= names, before the SIGHUP.
        let reloads = unit.split(separator: "\n").filter { $0.hasPrefix("ExecReload=") }
        #expect(reloads.count == 2 && reloads.first?.hasPrefix("ExecReload=+/bin/sh ") == true, "\(reloads)")
        #expect(reloads.first?.contains(" /etc/citrus-reconciler/digitalocean-token ") == true)
        #expect(reloads.last == "ExecReload=/bin/kill -HUP $MAINPID")
    }

    @Test(.enabled(if: geteuid() == 0, "install.sh sets root ownership"))
    func installerPutsFilesInPlaceWithSafeModesAndNeverPrintsTheToken() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("citrus-install-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let token = "dop_v1_\(UUID().uuidString)"
        let tokenFile = root.appendingPathExtension("token")
        try (token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tokenFile) }

        let script = repositoryRoot.appendingPathComponent("deploy/install.sh").path
        let install = try await SystemdCommand.run(
            [
                "/bin/sh", "-c", "exec \"$0\" --root \"$1\" --binary /bin/true --token-from-stdin < \"$2\"", script,
                root.path, tokenFile.path,
            ])
        #expect(install.succeeded, "\(install)")
        #expect(!install.stdout.contains(token) && !install.stderr.contains(token))

        func mode(_ path: String) throws -> Int {
            let attributes = try FileManager.default.attributesOfItem(atPath: root.path + path)
            return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }
        #expect(try mode("/usr/local/bin/citrus-reconciler") == 0o755)
        // Where packages put units; /etc/systemd/system stays the operator's.
        #expect(try mode("/usr/lib/systemd/system/citrus-reconciler.service") == 0o644)
        #expect(!FileManager.default.fileExists(atPath: root.path + "/etc/systemd/system/citrus-reconciler.service"))
        #expect(try mode("/usr/local/share/bash-completion/completions/citrus-reconciler") == 0o644)
        #expect(try mode("/usr/local/share/zsh/site-functions/_citrus-reconciler") == 0o644)
        #expect(try mode("/usr/lib/systemd/catalog/citrus-reconciler.catalog") == 0o644)
        #expect(try mode("/etc/citrus-reconciler") == 0o700)
        #expect(try mode("/etc/citrus-reconciler/citrus-reconciler.env") == 0o600)
        #expect(try mode("/etc/citrus-reconciler/digitalocean-token") == 0o600)
        #expect(
            try String(contentsOfFile: root.path + "/etc/citrus-reconciler/digitalocean-token", encoding: .utf8)
                == token
        )
        let env = try String(
            contentsOfFile: root.path + "/etc/citrus-reconciler/citrus-reconciler.env",
            encoding: .utf8
        )
        #expect(env.contains("CITRUS_DATABASE_URL="))
        #expect(FileManager.default.fileExists(atPath: root.path + "/var/lib/systemd/catalog/database"))

        // A second run keeps the operator's edits.
        try "CITRUS_DATABASE_URL=edited\n".write(
            toFile: root.path + "/etc/citrus-reconciler/citrus-reconciler.env",
            atomically: true,
            encoding: .utf8
        )
        let again = try await SystemdCommand.run([script, "--root", root.path, "--binary", "/bin/true"])
        #expect(again.succeeded, "\(again)")
        #expect(
            try String(contentsOfFile: root.path + "/etc/citrus-reconciler/citrus-reconciler.env", encoding: .utf8)
                == "CITRUS_DATABASE_URL=edited\n"
        )
        // The example configuration is the shipped file (the .deb's conffile too).
        let example = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/citrus-reconciler.env.example"),
            encoding: .utf8
        )
        #expect(env == example)

        // Uninstall removes what it installed and keeps the configuration and the token.
        let uninstall = try await SystemdCommand.run([script, "--uninstall", "--root", root.path])
        #expect(uninstall.succeeded, "\(uninstall)")
        #expect(uninstall.stdout.contains("kept \(root.path)/etc/citrus-reconciler"), "\(uninstall)")
        for gone in [
            "/usr/local/bin/citrus-reconciler", "/usr/lib/systemd/system/citrus-reconciler.service",
            "/usr/lib/systemd/catalog/citrus-reconciler.catalog",
            "/usr/local/share/bash-completion/completions/citrus-reconciler",
            "/usr/local/share/doc/citrus-reconciler",
        ] {
            #expect(!FileManager.default.fileExists(atPath: root.path + gone), "\(gone) is still there")
        }
        #expect(
            try String(contentsOfFile: root.path + "/etc/citrus-reconciler/digitalocean-token", encoding: .utf8)
                == token
        )
        #expect(FileManager.default.fileExists(atPath: root.path + "/etc/citrus-reconciler/citrus-reconciler.env"))
    }
}
