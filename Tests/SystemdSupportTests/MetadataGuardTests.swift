import Foundation
import Testing

/// The cloud-init template's step 0 (issue 25): only root may reach the droplet metadata service,
/// which serves user_data, bootstrap key included, to any process that asks. The guard script is
/// taken from deploy/cloud-init.sh.tmpl as shipped and run, twice, in a network namespace of its
/// own where 169.254.169.254 is a web server on the namespace's loopback: nothing leaves it.
@Suite("The template's metadata guard", .serialized)
struct MetadataGuardTests {
    static let canRun =
        getuid() == 0
        && ["/usr/bin/unshare", "/usr/bin/setpriv", "/usr/sbin/ip", "/usr/bin/python3"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0)
        }

    /// The guard script as the template writes it to /usr/local/sbin/citrus-metadata-guard.
    static func guardScript() throws -> String {
        let template = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/cloud-init.sh.tmpl"),
            encoding: .utf8
        )
        let lines = template.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasSuffix("<<'CITRUS_METADATA_GUARD'") })
        let end = try #require(lines[(start + 1)...].firstIndex { $0 == "CITRUS_METADATA_GUARD" })
        return lines[(start + 1)..<end].joined(separator: "\n") + "\n"
    }

    /// Root's and nobody's answer from the metadata address, before and after the guard ran twice.
    static func probe(guardScript: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("citrus-guard-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let guardPath = directory.appendingPathComponent("citrus-metadata-guard").path
        try guardScript.write(toFile: guardPath, atomically: true, encoding: .utf8)
        let driver = """
            set -eu
            ip link set lo up
            ip addr add 169.254.169.254/32 dev lo
            /usr/bin/python3 -m http.server --bind 169.254.169.254 8080 --directory \(directory.path) >/dev/null 2>&1 &
            server=$!
            # KILL: a test runner may have set SIGTERM to be ignored, which its children inherit.
            trap 'kill -KILL $server; wait $server 2>/dev/null || true' EXIT
            # Runs the request as the command given (env: root; setpriv …: nobody).
            probe() {
                "$@" /usr/bin/python3 -c 'import urllib.request; urllib.request.urlopen("http://169.254.169.254:8080/", timeout=2)' \
                    2>/dev/null && echo reached || echo refused
            }
            nobody="setpriv --reuid 65534 --regid 65534 --clear-groups"
            for _ in $(seq 50); do [ "$(probe env)" = reached ] && break; sleep 0.1; done
            echo "before: root $(probe env), nobody $(probe $nobody)"
            # Through sh, not exec'd: a process forked meanwhile by another test may hold the file
            # open for writing a moment longer (ETXTBSY).
            sh \(guardPath)
            sh \(guardPath)
            echo "after: root $(probe env), nobody $(probe $nobody)"
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        // A bound on the whole run: a hung probe fails the test instead of holding the suite.
        process.arguments = ["--net", "timeout", "--signal=KILL", "60", "bash", "-c", driver]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test(
        "with nft: root still reaches the metadata service, any other user is refused; running it again changes nothing",
        .enabled(if: canRun && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft"))
    )
    func nftables() throws {
        let output = try Self.probe(guardScript: try Self.guardScript())
        #expect(output.contains("before: root reached, nobody reached"), "\(output)")
        #expect(output.contains("after: root reached, nobody refused"), "\(output)")
    }

    @Test(
        "without nft, with iptables: the same",
        .enabled(if: canRun && FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables"))
    )
    func iptables() throws {
        let script = try Self.guardScript()
        let nftCheck = "if command -v nft >/dev/null 2>&1; then"
        #expect(script.contains(nftCheck))
        let output = try Self.probe(guardScript: script.replacingOccurrences(of: nftCheck, with: "if false; then"))
        #expect(output.contains("before: root reached, nobody reached"), "\(output)")
        #expect(output.contains("after: root reached, nobody refused"), "\(output)")
    }
}
