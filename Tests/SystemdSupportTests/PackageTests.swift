import CitrusTestKit
import Foundation
import Testing

/// `scripts/package-deb.sh`: what the .deb holds, and its maintainer scripts.
@Suite("The Debian package", .serialized)
struct PackageTests {
    struct Built {
        var deb: URL
        var directory: URL
    }

    /// Builds the package from the debug binary into a temporary directory.
    static func build() async throws -> Built {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "citrus-deb-test-\(UUID().uuidString.prefix(8))"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let binary = try BuiltProducts.executable(named: "citrus-reconciler")
        let result = try await SystemdCommand.run(
            [
                "/bin/bash", repositoryRoot.appendingPathComponent("scripts/package-deb.sh").path, "--binary",
                binary.path, "--output", directory.path,
            ],
            environment: ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin"],
            timeout: .seconds(120)
        )
        try #require(result.succeeded, "\(result)")
        let path = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return Built(deb: URL(fileURLWithPath: path), directory: directory)
    }

    static func run(_ arguments: [String]) async throws -> String {
        let result = try await SystemdCommand.run(
            arguments,
            environment: ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin"],
            timeout: .seconds(60)
        )
        try #require(result.succeeded, "\(arguments): \(result)")
        return result.stdout
    }

    @Test(
        "the package holds the daemon, unit, catalog, completions, man page and example configuration at a package's paths, and maintainer scripts that never start it"
    )
    func contents() async throws {
        let built = try await Self.build()
        defer { try? FileManager.default.removeItem(at: built.directory) }
        let listing = try await Self.run(["/usr/bin/dpkg-deb", "-c", built.deb.path])
        let entries = Dictionary(
            listing.split(separator: "\n").map { line -> (String, String) in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                return (
                    String(fields.last ?? "").replacingOccurrences(of: "./", with: "/", options: .anchored),
                    String(fields.first ?? "")
                )
            },
            uniquingKeysWith: { first, _ in first }
        )
        let expected: [String: String] = [
            "/usr/bin/citrus-reconciler": "-rwxr-xr-x",
            "/usr/lib/systemd/system/citrus-reconciler.service": "-rw-r--r--",
            "/usr/lib/systemd/catalog/citrus-reconciler.catalog": "-rw-r--r--",
            "/usr/share/bash-completion/completions/citrus-reconciler": "-rw-r--r--",
            "/usr/share/zsh/vendor-completions/_citrus-reconciler": "-rw-r--r--",
            "/usr/share/fish/vendor_completions.d/citrus-reconciler.fish": "-rw-r--r--",
            "/usr/share/man/man1/citrus-reconciler.1.gz": "-rw-r--r--",
            "/usr/share/doc/citrus-reconciler/README.md": "-rw-r--r--",
            "/usr/share/doc/citrus-reconciler/copyright": "-rw-r--r--",
            "/usr/share/doc/citrus-reconciler/changelog.Debian.gz": "-rw-r--r--",
            "/usr/share/lintian/overrides/citrus-reconciler": "-rw-r--r--",
            "/etc/citrus-reconciler/citrus-reconciler.env": "-rw-------",
            "/etc/citrus-reconciler/": "drwx------",
        ]
        for (path, mode) in expected {
            #expect(entries[path] == mode, "\(path): \(entries[path] ?? "missing")")
        }
        #expect(
            !entries.keys.contains { $0.hasPrefix("/etc/systemd/") || $0.hasPrefix("/usr/local/") },
            "\(entries.keys.sorted())"
        )
        #expect(listing.split(separator: "\n").allSatisfy { $0.contains(" root/root ") }, "files must be root's")

        // The version is the binary's own.
        let binary = try BuiltProducts.executable(named: "citrus-reconciler")
        let version = try await Self.run([binary.path, "--version"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(
            try await Self.run(["/usr/bin/dpkg-deb", "-f", built.deb.path, "Version"]).trimmingCharacters(
                in: .whitespacesAndNewlines
            ) == version
        )
        #expect(built.deb.lastPathComponent.hasPrefix("citrus-reconciler_\(version)_"))

        // The unit runs the packaged binary; the man page documents every subcommand.
        let tree = built.directory.appendingPathComponent("tree")
        _ = try await Self.run(["/usr/bin/dpkg-deb", "-x", built.deb.path, tree.path])
        let unit = try String(
            contentsOf: tree.appendingPathComponent("usr/lib/systemd/system/citrus-reconciler.service"),
            encoding: .utf8
        )
        #expect(unit.contains("\nExecStart=/usr/bin/citrus-reconciler run\n"))
        let manual = try await Self.run([
            "/bin/sh", "-c", "gzip -dc \"$0\"",
            tree.appendingPathComponent("usr/share/man/man1/citrus-reconciler.1.gz").path,
        ])
        for subcommand in ["run", "migrate", "plan", "status", "events"] {
            #expect(manual.contains(".It Em \(subcommand)"), "the man page lacks \(subcommand)")
        }
        let bash = try String(
            contentsOf: tree.appendingPathComponent("usr/share/bash-completion/completions/citrus-reconciler"),
            encoding: .utf8
        )
        #expect(bash.contains("complete") && bash.contains("--detailed-exitcode"))

        // Maintainer scripts: valid shell, the example configuration a conffile, never starting
        // the service on install.
        let control = built.directory.appendingPathComponent("control")
        _ = try await Self.run(["/usr/bin/dpkg-deb", "-e", built.deb.path, control.path])
        let conffiles = try String(contentsOf: control.appendingPathComponent("conffiles"), encoding: .utf8)
        #expect(conffiles == "/etc/citrus-reconciler/citrus-reconciler.env\n")
        for script in ["postinst", "prerm", "postrm"] {
            let path = control.appendingPathComponent(script).path
            #expect(FileManager.default.isExecutableFile(atPath: path), "\(script) is not executable")
            _ = try await Self.run(["/bin/sh", "-n", path])
        }
        let postinst = try String(contentsOf: control.appendingPathComponent("postinst"), encoding: .utf8)
        #expect(
            !postinst.contains("systemctl start") && !postinst.contains("systemctl enable"),
            "postinst starts or enables the service"
        )
        let postrm = try String(contentsOf: control.appendingPathComponent("postrm"), encoding: .utf8)
        #expect(!postrm.contains("digitalocean-token"), "purge must not remove the operator's token")
        let fields = try await Self.run([
            "/usr/bin/dpkg-deb", "-f", built.deb.path, "Package", "Depends", "Architecture",
        ])
        #expect(
            fields.contains("Package: citrus-reconciler") && fields.contains("libpq5")
                && fields.contains("libsystemd0"),
            "\(fields)"
        )
    }

    @Test(
        "the package carries a machine-readable copyright, a changelog.Debian.gz compressed with gzip -9n, and a maintainer named with an address (Debian Policy 5.6.2, 12.5, 12.7); lintian finds no error"
    )
    func policyFiles() async throws {
        let built = try await Self.build()
        defer { try? FileManager.default.removeItem(at: built.directory) }
        let tree = built.directory.appendingPathComponent("tree")
        _ = try await Self.run(["/usr/bin/dpkg-deb", "-x", built.deb.path, tree.path])
        let docs = tree.appendingPathComponent("usr/share/doc/citrus-reconciler")

        let copyright = try String(contentsOf: docs.appendingPathComponent("copyright"), encoding: .utf8)
        #expect(copyright.hasPrefix("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"))
        #expect(copyright.contains("\nFiles: *\nCopyright: "), "\(copyright)")
        // Every license a Files paragraph names has its own paragraph.
        let named = Set(copyright.split(separator: "\n").filter { $0.hasPrefix("License: ") })
        #expect(named.count >= 2 && named.allSatisfy { copyright.contains("\n\n\($0)\n") }, "\(named)")

        // gzip -9n: no file name (FLG bit 3) and no time stamp (MTIME 0) in the header.
        let changelogFile = docs.appendingPathComponent("changelog.Debian.gz")
        let header = [UInt8](try Data(contentsOf: changelogFile).prefix(10))
        #expect(header.count == 10 && header[0] == 0x1f && header[1] == 0x8b, "not gzip: \(header)")
        #expect(header.count == 10 && header[3] & 0x08 == 0 && header[4..<8].allSatisfy { $0 == 0 }, "\(header)")
        let changelog = try await Self.run(["/bin/sh", "-c", "gzip -dc \"$0\"", changelogFile.path])
        let version = try await Self.run(["/usr/bin/dpkg-deb", "-f", built.deb.path, "Version"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(changelog.hasPrefix("citrus-reconciler (\(version)) "), "\(changelog)")
        // dpkg-dev reads it as a changelog: its header and trailer lines are well formed.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-parsechangelog") {
            let parsed = try await Self.run([
                "/bin/sh", "-c", "gzip -dc \"$0\" >\"$1\" && dpkg-parsechangelog -l \"$1\" -S Version",
                changelogFile.path, built.directory.appendingPathComponent("changelog").path,
            ])
            #expect(parsed.trimmingCharacters(in: .whitespacesAndNewlines) == version)
        }

        // Policy 5.6.2: a name, then an address in angle brackets; not one that cannot be reached.
        let maintainer = try await Self.run(["/usr/bin/dpkg-deb", "-f", built.deb.path, "Maintainer"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(maintainer.wholeMatch(of: /[^<>]+ <[^<>@ ]+@[^<>@ ]+\.[^<>@ ]+>/) != nil, "\(maintainer)")
        #expect(!maintainer.contains("@localhost"), "\(maintainer)")
        #expect(changelog.contains("\n -- \(maintainer)  "), "\(changelog)")

        // lintian, where installed, finds no error. Suppressed: the debug binary's RUNPATH to the
        // toolchain, which a release build (the Swift runtime linked in) does not have.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/lintian") {
            let lintian = try await SystemdCommand.run(
                [
                    "/usr/bin/lintian", "--tag-display-limit", "0", "--suppress-tags", "custom-library-search-path",
                    built.deb.path,
                ],
                environment: ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin"],
                timeout: .seconds(300)
            )
            let errors = lintian.stdout.split(separator: "\n").filter { $0.hasPrefix("E: ") }
            #expect(errors.isEmpty && lintian.succeeded, "\(lintian)")
        }
    }
}
