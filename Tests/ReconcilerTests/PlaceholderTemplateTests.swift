import CitrusTestKit
import Foundation
import Testing

/// Agent bootstrap with the built-in template (its download address is a placeholder) is said
/// loudly where an operator looks: the daemon's start and `plan` (issue 25, operator fixes).
@Suite("The placeholder template")
struct PlaceholderTemplateTests {
    static let hub = "ws://127.0.0.1:9/agents"

    @Test(
        "bootstrap with the built-in template: the daemon warns at start and plan warns; a template of one's own: neither"
    )
    func warnsOnlyForThePlaceholder() async throws {
        try await World.with { world in
            let daemon = try world.daemon(["--engine-url", Self.hub])
            defer { daemon.signal(SIGKILL) }
            let warned = await eventually(timeout: .seconds(20)) {
                daemon.output.contains("built-in cloud-init template, whose agent download address is a placeholder")
            }
            #expect(warned, "\(daemon.output.suffix(2000))")
            await daemon.stop()

            let plan = try await world.command(["plan", "--engine-url", Self.hub])
            #expect(plan.status == 0, "\(plan.output)")
            #expect(
                plan.output.contains("warning: agent bootstrap uses the built-in cloud-init template"),
                "\(plan.output)"
            )

            let template = world.directory.appendingPathComponent("agent.sh.tmpl")
            try "#!/bin/sh\necho {AGENT_ID} {AGENT_KEY} {ENGINE_WS_URL}\n".write(
                to: template,
                atomically: true,
                encoding: .utf8
            )
            let own = try await world.command([
                "plan", "--engine-url", Self.hub, "--cloud-init-template", template.path,
            ])
            #expect(own.status == 0, "\(own.output)")
            #expect(!own.output.contains("placeholder"), "\(own.output)")
            let quiet = try world.daemon(
                ["--engine-url", Self.hub, "--cloud-init-template", template.path],
                name: "own-template"
            )
            defer { quiet.signal(SIGKILL) }
            let started = await eventually(timeout: .seconds(20)) {
                quiet.output.contains("citrus-reconciler starting")
            }
            #expect(started)
            try await Task.sleep(for: .milliseconds(500))
            #expect(!quiet.output.contains("placeholder"), "\(quiet.output.suffix(2000))")
            await quiet.stop()
        }
    }
}
