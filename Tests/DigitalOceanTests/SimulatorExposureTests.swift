import CitrusTestKit
import Foundation
import Testing

@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// The simulator's control API has no authentication: it stays on loopback unless told otherwise,
/// and a web page the operator happens to visit cannot drive it with a cross-site form post.
@Suite("Simulator exposure")
struct SimulatorExposureTests {
    static func call(
        _ sim: SimulatedDigitalOcean,
        _ method: String,
        _ uri: String,
        contentType: String?,
        _ body: String
    ) -> Int {
        let headers = contentType.map { [(name: "Content-Type", value: $0)] } ?? []
        guard
            case .respond(let response, _) = sim.handle(
                .init(method: method, uri: uri, headers: headers, body: Array(body.utf8))
            )
        else {
            return 0
        }
        return response.status
    }

    @Test("control calls that change state need Content-Type: application/json (415 otherwise, and nothing changes)")
    func controlNeedsJSON() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        let inject = #"{"name":"form-post","tags":["citrus-host"],"active":true}"#
        for contentType in [
            nil, "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain",
            "application/jsonp",
        ] {
            for prefix in ["/_sim", "/admin"] {
                #expect(
                    Self.call(sim, "POST", "\(prefix)/droplets", contentType: contentType, inject) == 415,
                    "\(prefix) \(contentType ?? "none")"
                )
                #expect(
                    Self.call(sim, "PUT", "\(prefix)/faults", contentType: contentType, #"{"fail_next_requests":5}"#)
                        == 415
                )
                #expect(
                    Self.call(sim, "PATCH", "\(prefix)/rate-limits", contentType: contentType, #"{"per_minute":1}"#)
                        == 415
                )
            }
        }
        #expect(sim.droplets().isEmpty, "a form post injected a droplet")
        #expect(sim.faults.failNextRequests == 0, "a form post changed the faults")
        // JSON, with or without parameters and in any case, is accepted; reads need no header.
        #expect(Self.call(sim, "POST", "/_sim/droplets", contentType: "application/json", inject) == 201)
        #expect(
            Self.call(
                sim,
                "PUT",
                "/admin/faults",
                contentType: "Application/JSON; charset=utf-8",
                #"{"fail_next_requests":1}"#
            ) == 200
        )
        #expect(sim.droplets().count == 1 && sim.faults.failNextRequests == 1)
        #expect(Self.call(sim, "GET", "/_sim/droplets", contentType: nil, "") == 200)
    }

    static func runSimulator(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
        let log = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "do-sim-\(UUID().uuidString.prefix(8)).log"
        )
        defer { try? FileManager.default.removeItem(at: log) }
        let process = ChildProcess(
            executable: try BuiltProducts.executable(named: "citrus-do-sim"),
            arguments: arguments,
            environment: ["PATH": "/usr/bin:/bin"],
            logFile: log
        )
        try process.start()
        let status = await process.waitForExit(timeout: .seconds(20))
        if status == nil { await process.stop() }
        return (status, process.output)
    }

    @Test("a non-loopback --host is refused with exit 78 and one line unless --allow-remote")
    func remoteHostNeedsConsent() async throws {
        for host in ["0.0.0.0", "::", "203.0.113.7", "example.com"] {
            let refused = try await Self.runSimulator(["--host", host, "--port", "0"])
            #expect(refused.status == 78, "\(host): \(refused.output)")
            let lines = refused.output.split(separator: "\n").filter { $0.contains("configuration error") }
            #expect(lines.count == 1 && lines[0].contains("--allow-remote"), "\(host): \(refused.output)")
        }
        // With consent the refusal is lifted (this address is not on the machine, so the bind fails
        // instead: nothing is exposed by the test).
        let allowed = try await Self.runSimulator(["--host", "203.0.113.7", "--port", "0", "--allow-remote"])
        #expect(allowed.status != 78 && allowed.status != nil, "\(allowed.output)")
        #expect(!allowed.output.contains("configuration error"), "\(allowed.output)")
    }
}

extension SimulatorExposureTests {
    @Test("loopback hosts start without --allow-remote")
    func loopbackHostsStart() async throws {
        for host in ["127.0.0.1", "localhost", "::1"] {
            let log = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
                "do-sim-\(UUID().uuidString.prefix(8)).log"
            )
            defer { try? FileManager.default.removeItem(at: log) }
            let process = ChildProcess(
                executable: try BuiltProducts.executable(named: "citrus-do-sim"),
                arguments: ["--host", host, "--port", "0"],
                environment: ["PATH": "/usr/bin:/bin"],
                logFile: log
            )
            try process.start()
            let listening = await eventually(timeout: .seconds(15), every: .milliseconds(50)) {
                process.output.contains("http://")
            }
            #expect(listening, "\(host): \(process.output)")
            await process.stop()
        }
    }
}
