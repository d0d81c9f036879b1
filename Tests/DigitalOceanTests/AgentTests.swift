import CitrusTestKit
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization
import Testing

@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

// MARK: - Extraction (pure)

@Suite struct AgentExtractionTests {
    static let id = "0b9c3f5e-6a61-4c1e-9d7a-2f4b8e1c5a90"
    static let key = String(repeating: "0123456789abcdef", count: 4)

    @Test func readsTheThreeLinesAsTheRenderedScriptWritesThem() {
        let script = """
            #!/bin/bash
            set -euo pipefail
            cat > /etc/citrus-agent/env <<EOF
            AGENT_ID=\(Self.id)
            AGENT_KEY=\(Self.key)
            ENGINE_WS_URL=ws://127.0.0.1:9000/agent
            EOF
            systemctl enable --now citrus-agent
            """
        #expect(
            AgentCredentials.extract(fromScript: script)
                == AgentCredentials(agentID: Self.id, key: Self.key, engineURL: "ws://127.0.0.1:9000/agent")
        )
    }

    @Test func allowsQuotesLeadingSpacesExportAndCRLF() {
        let script =
            "  export AGENT_ID=\"\(Self.id)\"\r\n\texport   AGENT_KEY='\(Self.key)'\r\n    ENGINE_WS_URL=\"wss://hub.example.com/agent\"  \r\n"
        #expect(
            AgentCredentials.extract(fromScript: script)
                == AgentCredentials(agentID: Self.id, key: Self.key, engineURL: "wss://hub.example.com/agent")
        )
    }

    @Test func takesTheFirstLineForEachName() {
        let script = "AGENT_ID=first\nAGENT_ID=second\nAGENT_KEY=k1\nENGINE_WS_URL=ws://localhost/\nAGENT_KEY=k2\n"
        #expect(
            AgentCredentials.extract(fromScript: script)
                == AgentCredentials(agentID: "first", key: "k1", engineURL: "ws://localhost/")
        )
    }

    @Test(arguments: [
        "",
        "#!/bin/sh\necho hello\n",
        "AGENT_ID=a\nAGENT_KEY=b\n",  // no URL
        "AGENT_ID=a\nENGINE_WS_URL=ws://127.0.0.1/\n",  // no key
        "AGENT_KEY=b\nENGINE_WS_URL=ws://127.0.0.1/\n",  // no id
        "AGENT_ID=\nAGENT_KEY=b\nENGINE_WS_URL=ws://127.0.0.1/\n",  // empty id
        "AGENT_ID=a\nAGENT_KEY=\"\"\nENGINE_WS_URL=ws://127.0.0.1/\n",  // empty quoted key
        "# AGENT_ID=a\n# AGENT_KEY=b\n# ENGINE_WS_URL=ws://127.0.0.1/\n",  // not at the start of a line
        "MY_AGENT_ID=a\nAGENT_KEY=b\nENGINE_WS_URL=ws://127.0.0.1/\n",
    ])
    func aScriptWithoutAllThreeValuesBootsWithoutAnAgent(script: String) {
        #expect(AgentCredentials.extract(fromScript: script) == nil)
    }

    @Test func theDescriptionNeverShowsTheKey() {
        let credentials = AgentCredentials(agentID: Self.id, key: Self.key, engineURL: "ws://127.0.0.1/agent")
        #expect(!"\(credentials)".contains(Self.key))
        #expect(!String(reflecting: credentials).contains(Self.key))
    }

    @Test func theWrongKeyDiffersInEveryCharacterAndKeepsItsShape() {
        let wrong = AgentCredentials.wrongKey(for: Self.key)
        #expect(wrong.count == Self.key.count)
        #expect(zip(wrong, Self.key).allSatisfy { $0 != $1 })
        #expect(wrong.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(AgentCredentials.wrongKey(for: "not hex") != "not hex")
    }

    @Test func endpointsParseAndOnlyLoopbackIsDialled() throws {
        let plain = try AgentEndpoint.parse("ws://127.0.0.1:9000/agent?x=1").get()
        #expect(plain == AgentEndpoint(secure: false, host: "127.0.0.1", port: 9000, target: "/agent?x=1"))
        #expect(plain.isLoopback)
        #expect(plain.description == "ws://127.0.0.1:9000/agent")
        let v6 = try AgentEndpoint.parse("ws://[::1]:81").get()
        #expect(v6 == AgentEndpoint(secure: false, host: "::1", port: 81, target: "/"))
        #expect(v6.isLoopback && v6.authority == "[::1]:81")
        #expect(try AgentEndpoint.parse("WS://LocalHost/agent").get().isLoopback)
        #expect(
            try AgentEndpoint.parse("wss://127.0.0.1/agent").get()
                == AgentEndpoint(secure: true, host: "127.0.0.1", port: 443, target: "/agent")
        )
        for remote in [
            "ws://hub.example.com/agent", "ws://10.0.0.1:80/", "ws://[2001:db8::1]/", "ws://127.0.0.1.example.com/",
        ] {
            #expect(try !AgentEndpoint.parse(remote).get().isLoopback, "\(remote)")
        }
        #expect(AgentEndpoint.parse("http://127.0.0.1/") == .failure(.notWebSocket))
        #expect(AgentEndpoint.parse("ws://:80/") == .failure(.badAuthority))
        #expect(AgentEndpoint.parse("ws://127.0.0.1:99999/") == .failure(.badAuthority))
    }
}

// MARK: - The key stays out of the request log and the state file

@Suite struct AgentSecrecyTests {
    static let key = String(repeating: "c0ffee42", count: 8)

    static func script(id: String, key: String, url: String) -> String {
        "#!/bin/bash\ncat > /etc/citrus-agent/env <<'EOF'\nAGENT_ID=\(id)\nAGENT_KEY=\(key)\nENGINE_WS_URL=\(url)\nEOF\n"
    }

    static func createBody(name: String, userData: String?) -> String {
        var fields: [(String, JSONValue)] = [
            ("name", .string(name)), ("size", "s-1vcpu-1gb"), ("image", "ubuntu-22-04-x64"), ("tags", ["citrus-host"]),
        ]
        if let userData { fields.append(("user_data", .string(userData))) }
        return JSONValue.object(fields).text
    }

    static func post(_ body: String, token: String = SimulatorHarness.token) -> SimulatedDigitalOcean.Request {
        .init(
            method: "POST",
            uri: "/v2/droplets",
            headers: [("authorization", "Bearer \(token)")],
            body: Array(body.utf8)
        )
    }

    @Test func theRequestLogNotesUserDataBySizeAndNeverKeepsItsText() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        let script = Self.script(id: UUID().uuidString.lowercased(), key: Self.key, url: "ws://127.0.0.1:1/agent")
        _ = sim.handle(Self.post(Self.createBody(name: "with-agent", userData: script)))
        // A create the API refuses for its user_data (not a string) is logged the same way.
        _ = sim.handle(
            Self.post(#"{"name":"bad","size":"s-1vcpu-1gb","image":"ubuntu-22-04-x64","user_data":["\#(Self.key)"]}"#)
        )
        // A body that is not JSON is not kept at all, only its size.
        let broken = #"{"name":"broken","user_data":"AGENT_KEY=\#(Self.key)"#
        _ = sim.handle(Self.post(broken))

        let log = sim.requestLog()
        #expect(log.count == 3)
        let first = try #require(log.first?.body)
        #expect(first.contains(#""user_data":"<present, \#(script.utf8.count) bytes>""#))
        #expect(first.contains(#""name":"with-agent""#) && first.contains("citrus-host"))
        #expect(log[0].bodyBytes == Self.createBody(name: "with-agent", userData: script).utf8.count)
        #expect(log[1].status == 422)
        #expect(log[1].body?.contains(#""user_data":"<present, "#) == true)
        #expect(log[2].status == 400)
        #expect(log[2].body == nil)
        #expect(log[2].bodyBytes == broken.utf8.count)

        let everything = String(decoding: try JSONEncoder().encode(log), as: UTF8.self)
        #expect(!everything.contains(Self.key))
        #expect(!everything.contains("AGENT_KEY"))
    }

    @Test func theStateFileAndTheAgentListingNeverHoldTheKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "do-sim-agents-\(UUID().uuidString)"
        )
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = SimulatorHarness.testConfiguration()
        configuration.stateDirectory = directory.path
        let sim = try SimulatedDigitalOcean(configuration: configuration)
        let id = UUID().uuidString.lowercased()
        _ = sim.handle(
            Self.post(
                Self.createBody(
                    name: "kept",
                    userData: Self.script(id: id, key: Self.key, url: "ws://127.0.0.1:1/agent")
                )
            )
        )

        let agents = sim.agents()
        #expect(agents.map(\.agentID) == [id])
        #expect(agents.first?.state == .waiting)
        let listing = String(decoding: try JSONEncoder().encode(agents), as: UTF8.self)
        #expect(!listing.contains(Self.key))

        let stateFile = String(
            decoding: try Data(contentsOf: directory.appendingPathComponent("simulator-state.json")),
            as: UTF8.self
        )
        #expect(stateFile.contains("kept"))
        #expect(!stateFile.contains(Self.key))
        #expect(!stateFile.contains(id))
        // A restart keeps the droplet but not its agent: the values lived in memory only.
        let restarted = try SimulatedDigitalOcean(configuration: configuration)
        #expect(restarted.droplets().map(\.name) == ["kept"])
        #expect(restarted.agents().isEmpty)
    }

    @Test func aDropletWithSomeOtherScriptHasNoAgent() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        _ = sim.handle(Self.post(Self.createBody(name: "plain", userData: "#!/bin/sh\necho hi\n")))
        _ = sim.handle(Self.post(Self.createBody(name: "none", userData: nil)))
        #expect(sim.droplets().count == 2)
        #expect(sim.agents().isEmpty)
    }
}

// MARK: - Admin API (transport-free)

@Suite struct AgentAdminTests {
    static func call(
        _ sim: SimulatedDigitalOcean,
        _ method: String,
        _ uri: String,
        _ body: String = ""
    ) throws -> (Int, JSONValue) {
        let request = SimulatedDigitalOcean.Request(
            method: method,
            uri: uri,
            headers: [(name: "Content-Type", value: "application/json")],
            body: Array(body.utf8)
        )
        guard case .respond(let response, _) = sim.handle(request) else {
            throw SimulatorError("no answer")
        }
        return (response.status, response.body.isEmpty ? .null : try JSONValue.parse(response.body))
    }

    @Test func faultsAndTimingsAreSetThroughTheAdminAPI() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        // A probability out of range refuses the whole change, naming the key.
        let (refused, reason) = try Self.call(sim, "PUT", "/_sim/faults", #"{"agent_wrong_key_probability":2}"#)
        #expect(refused == 422)
        #expect(reason["error"]?.stringValue?.contains("agent_wrong_key_probability") == true, "\(reason)")
        #expect(sim.faults.agentWrongKeyProbability == 0)
        let (status, faults) = try Self.call(
            sim,
            "PUT",
            "/_sim/faults",
            #"{"agent_never_connect_probability":0.25,"agent_wrong_key_probability":1,"agent_late_probability":0.5,"agent_late_seconds":30}"#
        )
        #expect(status == 200)
        #expect(faults["agent_wrong_key_probability"]?.doubleValue == 1)
        #expect(sim.faults.agentNeverConnectProbability == 0.25)
        #expect(sim.faults.agentLateProbability == 0.5 && sim.faults.agentLateSeconds == 30)

        #expect(try Self.call(sim, "GET", "/_sim/agent-settings").1["boot_delay_seconds"]?.doubleValue == 0.2)
        let (updated, timing) = try Self.call(
            sim,
            "PUT",
            "/admin/agent-settings",
            #"{"heartbeat_interval_seconds":3,"boot_delay_seconds":0}"#
        )
        #expect(updated == 200)
        #expect(timing["heartbeat_interval_seconds"]?.doubleValue == 3)
        #expect(sim.agentTiming.bootDelaySeconds == 0 && sim.agentTiming.heartbeatIntervalSeconds == 3)
        #expect(try Self.call(sim, "PUT", "/_sim/agent-settings", #"{"heartbeat_interval_seconds":-1}"#).0 == 422)
    }

    @Test func perDropletControlAnswersForDropletsWithAgentsOnly() throws {
        let sim = try SimulatedDigitalOcean(configuration: SimulatorHarness.testConfiguration())
        let script = AgentSecrecyTests.script(id: "a-1", key: AgentSecrecyTests.key, url: "ws://127.0.0.1:1/agent")
        _ = sim.handle(AgentSecrecyTests.post(AgentSecrecyTests.createBody(name: "with", userData: script)))
        _ = sim.handle(AgentSecrecyTests.post(AgentSecrecyTests.createBody(name: "without", userData: nil)))
        let with = try #require(sim.droplets().first { $0.name == "with" }?.id)
        let without = try #require(sim.droplets().first { $0.name == "without" }?.id)

        let (status, answer) = try Self.call(sim, "POST", "/admin/droplets/\(with)/agent", #"{"heartbeats":false}"#)
        #expect(status == 200)
        #expect(answer["agent"]?["heartbeats_enabled"] == false)
        #expect(answer["agent"]?["connect_enabled"] == true)
        #expect(try Self.call(sim, "POST", "/_sim/droplets/\(with)/agent", #"{"connected":false}"#).0 == 200)
        #expect(sim.agent(dropletID: with)?.connectEnabled == false)
        #expect(try Self.call(sim, "POST", "/_sim/droplets/\(with)/agent", #"{"connected":"no"}"#).0 == 422)
        #expect(try Self.call(sim, "POST", "/_sim/droplets/\(with)/agent", "nonsense").0 == 400)
        #expect(try Self.call(sim, "POST", "/_sim/droplets/\(without)/agent", #"{"heartbeats":false}"#).0 == 404)

        let (_, listing) = try Self.call(sim, "GET", "/_sim/agents")
        #expect(listing["agents"]?.arrayValue?.map { $0["droplet_id"]?.intValue } == [with])
        #expect(!listing.text.contains(AgentSecrecyTests.key))
        #expect(
            sim.requestLog().allSatisfy { !$0.path.contains("_sim") && !$0.path.contains("admin") },
            "admin calls are not logged"
        )
    }
}

// MARK: - End to end: a droplet boots and its agent talks to a tiny hub

@Suite(.serialized) struct AgentEndToEndTests {
    static let agentID = "6f1c2a9e-8d4b-4e3f-a1b2-c3d4e5f60718"
    static let key = String(repeating: "5a17ed", count: 10) + "beef"

    /// Fast timings: boot 0.2 s, cloud-init 0.2 s later, a heartbeat every 0.2 s, retry from 0.2 s.
    static func configuration(_ tweak: (inout SimulatorConfiguration) -> Void = { _ in }) -> SimulatorConfiguration {
        var configuration = SimulatorHarness.testConfiguration()
        configuration.bootTime = .milliseconds(200)
        configuration.agentBootDelay = .milliseconds(200)
        configuration.agentHeartbeatInterval = .milliseconds(200)
        configuration.agentReconnectInitialDelay = .milliseconds(200)
        configuration.agentReconnectMaximumDelay = .milliseconds(400)
        tweak(&configuration)
        return configuration
    }

    /// The hub, the simulator (agents running, logging into `recorder`), then `body`; all stopped after.
    static func withWorld(
        accepting accepted: [String: String] = [agentID: key],
        configuration: SimulatorConfiguration = configuration(),
        recorder: RecordingLogHandler.Recorder = .init(),
        _ body: (TestHub, SimulatorHarness.Running) async throws -> Void
    ) async throws {
        let hub = try await TestHub.start(accepting: accepted)
        do {
            let logger = Logger(label: "sim") { RecordingLogHandler(label: $0, recorder: recorder) }
            try await SimulatorHarness.withSimulator(configuration: configuration, logger: logger) { sim in
                try await body(hub, sim)
            }
            await hub.stop()
        } catch {
            await hub.stop()
            throw error
        }
        let logged = recorder.entries.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(!logged.contains(key), "a log line carries the key")
    }

    /// Creates a droplet through the HTTP API and returns its id.
    static func create(
        _ sim: SimulatorHarness.Running,
        name: String,
        url: String,
        key: String = key
    ) async throws -> Int64 {
        let script = AgentSecrecyTests.script(id: agentID, key: key, url: url)
        let response = try await raw(
            .POST,
            sim.baseURL + "/v2/droplets",
            token: sim.token,
            body: AgentSecrecyTests.createBody(name: name, userData: script)
        )
        #expect(response.status == 202)
        return try #require(try JSONValue.parse(response.body)["droplet"]?["id"]?.intValue)
    }

    static func admin(_ sim: SimulatorHarness.Running, droplet: Int64, _ body: String) async throws {
        let response = try await raw(.POST, sim.baseURL + "/_sim/droplets/\(droplet)/agent", token: nil, body: body)
        #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
    }

    @Test func aBootedDropletsAgentSaysHelloWithItsIDAndKeyThenHeartbeats() async throws {
        try await Self.withWorld { hub, sim in
            let droplet = try await Self.create(sim, name: "agent-1", url: hub.url)
            #expect(try await eventually { hub.heartbeats(on: 0) >= 2 })
            let hello = try #require(hub.messages(on: 0).first)
            #expect(
                hello == .object([("agent_id", .string(Self.agentID)), ("key", .string(Self.key)), ("type", "hello")])
            )
            let active = try #require(sim.simulator.droplet(id: droplet)?.activeAt)
            #expect(
                try #require(hub.firstHelloAt).timeIntervalSince(active) >= 0.19,
                "cloud-init waits for the boot delay"
            )

            let listing = try await raw(.GET, sim.baseURL + "/_sim/agents", token: nil)
            let text = String(decoding: listing.body, as: UTF8.self)
            #expect(!text.contains(Self.key))
            let agent = try #require(try JSONValue.parse(listing.body)["agents"]?.arrayValue?.first)
            #expect(agent["droplet_id"]?.intValue == droplet)
            #expect(agent["agent_id"]?.stringValue == Self.agentID)
            #expect(agent["state"]?.stringValue == "connected")
            #expect((agent["heartbeats_sent"]?.intValue ?? 0) >= 2)
            #expect(agent["refusals"]?.intValue == 0)
            // The same listing under /admin.
            #expect(try await raw(.GET, sim.baseURL + "/admin/agents", token: nil).status == 200)
        }
    }

    @Test func heartbeatsPauseAndResumeThroughTheAdminAPIWhileConnected() async throws {
        try await Self.withWorld { hub, sim in
            let droplet = try await Self.create(sim, name: "agent-pause", url: hub.url)
            #expect(try await eventually { hub.heartbeats(on: 0) >= 1 })
            try await Self.admin(sim, droplet: droplet, #"{"heartbeats": false}"#)
            try await Task.sleep(for: .milliseconds(150))  // a beat already in flight may still land
            let paused = hub.heartbeats(on: 0)
            try await Task.sleep(for: .milliseconds(700))  // more than three intervals
            #expect(hub.heartbeats(on: 0) == paused)
            #expect(hub.connectionCount == 1 && !hub.isClosed(0), "still connected while silent")
            #expect(sim.simulator.agent(dropletID: droplet)?.heartbeatsEnabled == false)

            try await Self.admin(sim, droplet: droplet, #"{"heartbeats": true}"#)
            #expect(try await eventually { hub.heartbeats(on: 0) >= paused + 2 })
            #expect(hub.connectionCount == 1)
        }
    }

    @Test func disconnectStaysAwayUntilReconnectAndDeletingTheDropletStopsTheAgent() async throws {
        try await Self.withWorld { hub, sim in
            let droplet = try await Self.create(sim, name: "agent-drop", url: hub.url)
            #expect(try await eventually { hub.messages(on: 0).count >= 1 })
            try await Self.admin(sim, droplet: droplet, #"{"connected": false}"#)
            #expect(try await eventually { hub.isClosed(0) })
            #expect(try await eventually { sim.simulator.agent(dropletID: droplet)?.state == .stopped })
            try await Task.sleep(for: .milliseconds(600))  // longer than the backoff
            #expect(hub.connectionCount == 1)

            try await Self.admin(sim, droplet: droplet, #"{"connected": true}"#)
            #expect(try await eventually { hub.messages(on: 1).first?["type"] == "hello" })
            #expect(try await eventually { sim.simulator.agent(dropletID: droplet)?.connections == 2 })

            let deleted = try await raw(.DELETE, sim.baseURL + "/v2/droplets/\(droplet)", token: sim.token)
            #expect(deleted.status == 204)
            #expect(try await eventually { hub.isClosed(1) })
            try await Task.sleep(for: .milliseconds(600))
            #expect(hub.connectionCount == 2, "a deleted droplet's agent does not come back")
            #expect(sim.simulator.agent(dropletID: droplet)?.state == .stopped)
        }
    }

    @Test func theWrongKeyFaultPresentsAnotherKeyAndKeepsRetrying() async throws {
        let configuration = Self.configuration { $0.faults.agentWrongKeyProbability = 1 }
        try await Self.withWorld(configuration: configuration) { hub, sim in
            let droplet = try await Self.create(sim, name: "agent-wrong", url: hub.url)
            #expect(try await eventually { hub.refusals >= 2 })
            let presented = try #require(hub.messages(on: 0).first?["key"]?.stringValue)
            #expect(presented != Self.key)
            #expect(presented.count == 64)
            #expect(try await eventually { (sim.simulator.agent(dropletID: droplet)?.refusals ?? 0) >= 2 })
            let agent = try #require(sim.simulator.agent(dropletID: droplet))
            #expect(agent.faults == ["wrong_key"])
            #expect(agent.connections == 0)
        }
    }

    @Test func theNeverConnectFaultNeverDials() async throws {
        let configuration = Self.configuration { $0.faults.agentNeverConnectProbability = 1 }
        try await Self.withWorld(configuration: configuration) { hub, sim in
            let droplet = try await Self.create(sim, name: "agent-never", url: hub.url)
            #expect(try await eventually { sim.simulator.droplet(id: droplet)?.activeAt != nil })
            try await Task.sleep(for: .milliseconds(1000))  // boot delay, two polls and then some
            #expect(hub.connectionCount == 0)
            let agent = try #require(sim.simulator.agent(dropletID: droplet))
            #expect(agent.state == .waiting)
            #expect(agent.faults == ["never_connect"])
        }
    }

    @Test func theLateFaultConnectsThatMuchLater() async throws {
        let configuration = Self.configuration {
            $0.faults.agentLateProbability = 1
            $0.faults.agentLateSeconds = 0.8
        }
        try await Self.withWorld(configuration: configuration) { hub, sim in
            let droplet = try await Self.create(sim, name: "agent-late", url: hub.url)
            // The hello, not only the connection: it is read a moment after the connection opens.
            #expect(try await eventually { hub.firstHelloAt != nil })
            #expect(hub.connectionCount == 1)
            let active = try #require(sim.simulator.droplet(id: droplet)?.activeAt)
            #expect(try #require(hub.firstHelloAt).timeIntervalSince(active) >= 0.99)
        }
    }

    @Test func anEngineURLOffLoopbackOrOverTLSIsNeverDialled() async throws {
        let recorder = RecordingLogHandler.Recorder()
        try await Self.withWorld(recorder: recorder) { hub, sim in
            let remote = try await Self.create(sim, name: "agent-remote", url: "ws://192.0.2.1:\(hub.port)/agent")
            let secure = try await Self.create(sim, name: "agent-tls", url: "wss://127.0.0.1:\(hub.port)/agent")
            #expect(
                try await eventually {
                    sim.simulator.agent(dropletID: remote)?.note != nil
                        && sim.simulator.agent(dropletID: secure)?.note != nil
                }
            )
            #expect(sim.simulator.agent(dropletID: remote)?.state == .stopped)
            #expect(sim.simulator.agent(dropletID: remote)?.note?.contains("not loopback") == true)
            #expect(sim.simulator.agent(dropletID: secure)?.note?.contains("ws:// only") == true)
            #expect(hub.connectionCount == 0)
            #expect(
                recorder.entries.contains {
                    $0.message == "agent not started" && $0.metadata["reason"]?.contains("192.0.2.1") == true
                }
            )
            #expect(!recorder.entries.contains { $0.message == "agent connecting" })
        }
    }
}

// MARK: - A tiny hub: accepts WebSocket upgrades on /agent and records what agents say

final class TestHub: Sendable {
    private struct Record: Sendable {
        var messages: [JSONValue] = []
        var closed = false
    }

    private let accepted: [String: String]
    private let records = Mutex<[Record]>([])
    private let refusalCount = Mutex(0)
    private let helloTime = Mutex<Date?>(nil)
    private let channel: Mutex<(any Channel)?>
    let port: Int

    var url: String { "ws://127.0.0.1:\(port)/agent" }

    private init(accepted: [String: String], channel: any Channel, port: Int) {
        self.accepted = accepted
        self.channel = Mutex(channel)
        self.port = port
    }

    static func start(accepting accepted: [String: String]) async throws -> TestHub {
        let hubBox = Mutex<TestHub?>(nil)
        let upgrader = NIOWebSocketServerUpgrader(
            shouldUpgrade: { channel, head in
                channel.eventLoop.makeSucceededFuture(head.uri == "/agent" ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    guard let hub = hubBox.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    try channel.pipeline.syncOperations.addHandler(HubHandler(hub: hub, connection: hub.open()))
                }
            }
        )
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let hub = TestHub(accepted: accepted, channel: channel, port: channel.localAddress?.port ?? 0)
        hubBox.withLock { $0 = hub }
        return hub
    }

    func stop() async {
        let channel = self.channel.withLock { $0 }
        try? await channel?.close()
    }

    // What the tests read.
    var connectionCount: Int { records.withLock { $0.count } }
    var refusals: Int { refusalCount.withLock { $0 } }
    var firstHelloAt: Date? { helloTime.withLock { $0 } }
    func messages(on connection: Int) -> [JSONValue] {
        records.withLock { connection < $0.count ? $0[connection].messages : [] }
    }
    func heartbeats(on connection: Int) -> Int { messages(on: connection).filter { $0["type"] == "heartbeat" }.count }
    func isClosed(_ connection: Int) -> Bool { records.withLock { connection < $0.count && $0[connection].closed } }

    // What the handler writes.
    fileprivate func open() -> Int {
        records.withLock {
            $0.append(Record())
            return $0.count - 1
        }
    }

    fileprivate func received(_ message: JSONValue, on connection: Int) {
        records.withLock { $0[connection].messages.append(message) }
        if message["type"] == "hello" { helloTime.withLock { $0 = $0 ?? Date() } }
    }

    fileprivate func closed(_ connection: Int) { records.withLock { $0[connection].closed = true } }

    fileprivate func accepts(_ hello: JSONValue) -> Bool {
        guard let id = hello["agent_id"]?.stringValue, let key = hello["key"]?.stringValue else { return false }
        let ok = accepted[id] == key
        if !ok { refusalCount.withLock { $0 += 1 } }
        return ok
    }
}

private final class HubHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let hub: TestHub
    let connection: Int
    var greeted = false
    var closing = false

    init(hub: TestHub, connection: Int) {
        self.hub = hub
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard let message = try? JSONValue.parse(frame.unmaskedData.readableBytesView) else { return }
            hub.received(message, on: connection)
            guard !greeted, message["type"] == "hello" else { return }
            greeted = true
            if hub.accepts(message) {
                send(context, .text, #"{"type":"welcome"}"#)
            } else {
                send(context, .text, #"{"type":"refused","reason":"unknown agent or wrong key"}"#)
                var code = context.channel.allocator.buffer(capacity: 2)
                code.writeInteger(UInt16(4401))
                closing = true
                context.writeAndFlush(
                    wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code)),
                    promise: nil
                )
            }
        case .connectionClose:
            if closing {
                context.close(promise: nil)
            } else {
                closing = true
                let echo = WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)
                context.writeAndFlush(wrapOutboundOut(echo)).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        hub.closed(connection)
        context.fireChannelInactive()
    }

    private func send(_ context: ChannelHandlerContext, _ opcode: WebSocketOpcode, _ text: String) {
        let frame = WebSocketFrame(fin: true, opcode: opcode, data: context.channel.allocator.buffer(string: text))
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }
}
