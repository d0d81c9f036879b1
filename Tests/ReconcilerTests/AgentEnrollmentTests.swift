import DigitalOcean
import DigitalOceanAdapter
import Foundation
import Reconciler
import Testing

/// The daemon's half of agent bootstrap, without a database: keys, hashes, rendering, checks.
@Suite("Agent enrollment")
struct AgentEnrollmentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("the compiled-in default template is deploy/cloud-init.sh.tmpl, byte for byte")
    func defaultTemplateMatchesDeploy() throws {
        let shipped = try String(
            contentsOf: Self.root.appendingPathComponent("deploy/cloud-init.sh.tmpl"),
            encoding: .utf8
        )
        #expect(AgentEnrollment.defaultTemplate == shipped)
    }

    @Test("the default template writes the three values as the agent reads them, to a 0600 file, never tracing")
    func defaultTemplateHandlesTheSecret() throws {
        let enrollment = try AgentEnrollment(
            engineURL: "wss://hub.example.com/agent",
            template: AgentEnrollment.defaultTemplate
        )
        let agent = UUID()
        let key = AgentEnrollment.newKey()
        let script = enrollment.userData(agent: agent, key: key).text
        let lines = script.split(separator: "\n").map(String.init)
        #expect(lines.contains("AGENT_ID=\(agent.uuidString.lowercased())"))
        #expect(lines.contains("AGENT_KEY=\(key)"))
        #expect(lines.contains("ENGINE_WS_URL=wss://hub.example.com/agent"))
        #expect(!script.contains("{AGENT_"), "a placeholder was left")
        #expect(script.contains("install -m 0600 -o root -g root /dev/null /etc/citrus-agent/agent.env"))
        #expect(script.contains("set +x") && !lines.contains("set -x"))
        #expect(
            lines.filter { $0.contains(key) } == ["AGENT_KEY=\(key)"],
            "the key appears only in the env file's heredoc"
        )
        #expect(script.contains("citrus-agent.service"))
    }

    @Test(
        "the default template lets only root reach the metadata service, at every boot, before the agent starts, which requires it"
    )
    func defaultTemplateGuardsTheMetadataService() throws {
        let script = AgentEnrollment.defaultTemplate
        let guardRule = try #require(script.range(of: "ip daddr 169.254.169.254 meta skuid != {"))
        #expect(script.contains("--uid-owner \"$uid\" -j RETURN"), "no rule where nft is missing")
        let enabled = try #require(script.range(of: "systemctl enable --now citrus-metadata-guard.service"))
        let keyWritten = try #require(script.range(of: "AGENT_KEY={AGENT_KEY}"))
        let agentStarted = try #require(script.range(of: "systemctl enable --now citrus-agent.service"))
        #expect(guardRule.lowerBound < enabled.lowerBound)
        #expect(enabled.lowerBound < keyWritten.lowerBound, "the key is on disk before the guard is up")
        #expect(keyWritten.lowerBound < agentStarted.lowerBound)
        // Rules do not survive a reboot: a unit puts them back each time, and the agent needs it.
        #expect(script.contains("WantedBy=multi-user.target\nCITRUS_METADATA_GUARD_UNIT"))
        #expect(script.contains("Requires=citrus-metadata-guard.service"))
        #expect(script.contains("After=network-online.target citrus-metadata-guard.service"))
        // The hub's credential outlives restarts, readable by the agent alone.
        #expect(script.contains("StateDirectory=citrus-agent\nStateDirectoryMode=0700"))
    }

    @Test("a template file belongs to root or the daemon's user and is writable by no one else")
    func templateFileOwnerAndMode() {
        let daemon: UInt32 = 998
        let regular: UInt32 = 0o100000
        for (mode, owner) in [(0o644, 0), (0o600, daemon), (0o444, 0), (0o640, daemon), (0o755, 0)]
            as [(UInt32, UInt32)]
        {
            #expect(
                AgentEnrollment.templateFileProblem(mode: regular | mode, owner: owner, user: daemon) == nil,
                "0\(String(mode, radix: 8)) owned by \(owner)"
            )
        }
        for mode: UInt32 in [0o664, 0o646, 0o666, 0o620, 0o602] {
            let problem = AgentEnrollment.templateFileProblem(mode: regular | mode, owner: 0, user: daemon)
            #expect(problem?.contains("writable by its group or by others (mode 0\(String(mode, radix: 8)))") == true)
        }
        let foreign = AgentEnrollment.templateFileProblem(mode: regular | 0o644, owner: 1000, user: daemon)
        #expect(foreign?.contains("owned by uid 1000, neither root nor this daemon's user (uid 998)") == true)
        // Run as root, the daemon's user is root.
        #expect(AgentEnrollment.templateFileProblem(mode: regular | 0o644, owner: 0, user: 0) == nil)
    }

    @Test("keys are 256 bits of fresh randomness as 64 lowercase hex digits; the stored hash is SHA-256 of that text")
    func keysAndHashes() {
        let keys = (0..<1000).map { _ in AgentEnrollment.newKey() }
        #expect(Set(keys).count == keys.count)
        #expect(keys.allSatisfy { $0.count == 64 && $0.allSatisfy { "0123456789abcdef".contains($0) } })
        // FIPS 180-2's example.
        #expect(AgentEnrollment.keySHA256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("the hub's address: wss anywhere, ws only to loopback, nothing else")
    func engineURLs() {
        for good in [
            "wss://hub.example.com/agent", "ws://127.0.0.1:8766/agent", "ws://localhost/agent", "ws://[::1]:9/agent",
        ] {
            #expect(throws: Never.self, "\(good)") { try AgentEnrollment(engineURL: good, template: "{AGENT_KEY}") }
        }
        for bad in [
            "ws://hub.example.com/agent", "http://127.0.0.1/agent", "hub.example.com", "wss://{AGENT_KEY}/x",
            "wss://a b/",
        ] {
            #expect(throws: EnrollmentProblem.self, "\(bad)") {
                try AgentEnrollment(engineURL: bad, template: "{AGENT_KEY}")
            }
        }
    }

    @Test("a template is refused when it never names the key, or renders to more than 64 KiB; exactly 64 KiB is fine")
    func templateChecks() throws {
        let url = "wss://hub.example.com/agent"
        #expect(throws: EnrollmentProblem.self) {
            try AgentEnrollment(engineURL: url, template: "#!/bin/sh\necho {AGENT_ID}\n")
        }
        // The key renders to 64 characters in place of its 11-character placeholder.
        let fits = "{AGENT_KEY}" + String(repeating: "x", count: 64 * 1024 - 64)
        #expect(throws: Never.self) { try AgentEnrollment(engineURL: url, template: fits) }
        #expect(throws: EnrollmentProblem.self) { try AgentEnrollment(engineURL: url, template: fits + "x") }
    }

    @Test("user data and create requests print as their size, never their text")
    func printedWithoutSecrets() throws {
        let enrollment = try AgentEnrollment(
            engineURL: "wss://hub.example.com/agent",
            template: AgentEnrollment.defaultTemplate
        )
        let key = AgentEnrollment.newKey()
        let userData = enrollment.userData(agent: UUID(), key: key)
        var request = DropletCreateRequest(name: "web-1", userData: userData.text)
        request.secrets = userData.secrets
        for printed in [
            "\(userData)", String(reflecting: userData), "\(request)", String(reflecting: request), "\([request])",
        ] {
            #expect(!printed.contains(key), "\(printed)")
        }
        var dumped = ""
        dump(request, to: &dumped)
        #expect(!dumped.contains(key))
        let echoed = DigitalOceanError(code: .validation, message: "bad body: AGENT_KEY=\(key)")
        #expect(request.redacting(echoed).message == "bad body: AGENT_KEY=[redacted]")
    }
}
