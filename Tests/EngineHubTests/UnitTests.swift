import Foundation
import NIOHTTP1
import Testing

@testable import EngineHubSimulator

@Suite("The hub's decisions, with nothing running")
struct UnitTests {
    static let timing = AgentSession.Timing(
        helloTimeout: .seconds(10),
        idleLimit: .seconds(90),
        closeGracePeriod: .seconds(1)
    )
    let start = ContinuousClock.now

    @Test("the key digest is the lowercase hex SHA-256 of the key's text, compared exactly")
    func keyDigest() {
        #expect(
            KeyDigest.hex(of: PresentedKey("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
        let key = TestAgent.randomKey()
        let stored = TestAgent.digest(of: key)
        #expect(KeyDigest.matches(PresentedKey(key), storedHex: stored))
        #expect(KeyDigest.matches(PresentedKey(key), storedHex: stored.uppercased()))
        #expect(!KeyDigest.matches(PresentedKey(key + " "), storedHex: stored))
        #expect(!KeyDigest.matches(PresentedKey(key), storedHex: String(stored.dropLast())))
        #expect(!KeyDigest.matches(PresentedKey(""), storedHex: ""))
        // The key is text: its uppercase spelling is a different key.
        let lettered = String(repeating: "ab", count: 32)
        #expect(!KeyDigest.matches(PresentedKey(lettered.uppercased()), storedHex: TestAgent.digest(of: lettered)))
    }

    @Test("a presented key never prints")
    func keyNeverPrints() {
        let key = PresentedKey("0123456789abcdef")
        #expect(!"\(key)".contains("0123"))
        #expect(!String(reflecting: key).contains("0123"))
        let action = AgentSession.Action.authenticate(agentID: UUID(), key: key)
        #expect(!"\(action)".contains("0123"))
    }

    @Test(
        "agent messages parse by type",
        arguments: [
            (#"{"type":"hello","agent_id":"a","key":"k"}"#, AgentMessage.hello(agentID: "a", key: PresentedKey("k"))),
            (#"{"type":"heartbeat"}"#, .heartbeat),
            (#"{"type":"heartbeat","extra":1}"#, .heartbeat),
            (#"{"type":"hello","agent_id":"a"}"#, .other(type: "hello")),
            (#"{"type":"status"}"#, .other(type: "status")),
            (#"{"kind":"hello"}"#, .unreadable),
            ("[1,2]", .unreadable),
            ("hello", .unreadable),
        ]
    )
    func parsesMessages(text: String, expected: AgentMessage) {
        #expect(AgentMessage.parse(text) == expected)
    }

    @Test("the refused message carries the reason as a JSON string")
    func refusedMessage() throws {
        let text = HubMessage.refused(reason: #"a "quoted" reason"#)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(object == ["type": "refused", "reason": #"a "quoted" reason"#])
    }

    @Test("a hello is authenticated, then welcomed; heartbeats are recorded and push the idle deadline")
    func helloThenHeartbeats() {
        var session = AgentSession(openedAt: start, timing: Self.timing)
        #expect(session.deadline == start + .seconds(10))
        let id = UUID()
        let action = session.receivedText(
            #"{"type":"hello","agent_id":"\#(id.uuidString.lowercased())","key":"k"}"#,
            at: start
        )
        #expect(action == .authenticate(agentID: id, key: PresentedKey("k")))
        #expect(session.deadline == nil)
        #expect(session.authenticationFinished(.accepted, at: start + .seconds(1)) == .welcome(agentID: id))
        #expect(session.deadline == start + .seconds(91))
        #expect(
            session.receivedText(#"{"type":"heartbeat"}"#, at: start + .seconds(30)) == .recordHeartbeat(agentID: id)
        )
        #expect(session.deadline == start + .seconds(120))
        #expect(session.receivedText(#"{"type":"hello","agent_id":"x","key":"y"}"#, at: start + .seconds(31)) == .none)
        #expect(session.deadlinePassed(at: start + .seconds(100)) == .none)
        guard case .close(1001, _, .idle) = session.deadlinePassed(at: start + .seconds(121)) else {
            Issue.record("an idle agent must be closed with 1001")
            return
        }
        #expect(session.receivedClose(code: 1001) == .hangUp)
        #expect(session.phase == .finished)
    }

    @Test("no hello in time, or another first message, closes with 4400")
    func helloRequired() {
        var silent = AgentSession(openedAt: start, timing: Self.timing)
        #expect(silent.deadlinePassed(at: start + .seconds(9)) == .none)
        guard case .close(4400, _, .helloTimeout) = silent.deadlinePassed(at: start + .seconds(10)) else {
            Issue.record("a silent connection must be closed with 4400")
            return
        }
        #expect(silent.deadlinePassed(at: start + .seconds(11)) == .hangUp)

        for first in [#"{"type":"heartbeat"}"#, "{}", "garbage"] {
            var session = AgentSession(openedAt: start, timing: Self.timing)
            guard case .close(4400, _, .notAHello) = session.receivedText(first, at: start) else {
                Issue.record("first message \(first) must close with 4400")
                continue
            }
        }
        var binary = AgentSession(openedAt: start, timing: Self.timing)
        guard case .close(4400, _, .notAHello) = binary.receivedBinary(at: start) else {
            Issue.record("a binary first message must close with 4400")
            return
        }
        var pinged = AgentSession(openedAt: start, timing: Self.timing)
        pinged.receivedControl(at: start + .seconds(5))
        #expect(pinged.deadline == start + .seconds(10), "a ping is not a hello")
    }

    @Test("refusals close with 4401 after the refused message; a malformed id is an unknown agent")
    func refusals() {
        var session = AgentSession(openedAt: start, timing: Self.timing)
        #expect(
            session.receivedText(#"{"type":"hello","agent_id":"nope","key":"k"}"#, at: start)
                == .refuse(agentID: nil, kind: .unknownAgent)
        )
        #expect(session.phase == .closing)

        var wrong = AgentSession(openedAt: start, timing: Self.timing)
        let id = UUID()
        _ = wrong.receivedText(#"{"type":"hello","agent_id":"\#(id)","key":"k"}"#, at: start)
        #expect(wrong.authenticationFinished(.refused(.wrongKey), at: start) == .refuse(agentID: id, kind: .wrongKey))
        #expect(wrong.deadline == start + .seconds(1))
        #expect(wrong.deadlinePassed(at: start + .seconds(1)) == .hangUp)
    }

    @Test("a drop or a shutdown closes with 1001 once; the agent's close is answered")
    func dropsAndCloses() {
        var session = AgentSession(openedAt: start, timing: Self.timing)
        guard case .close(1001, "dropped by the hub operator", .dropped) = session.dropped(at: start) else {
            Issue.record("a drop must close with 1001")
            return
        }
        #expect(session.dropped(at: start) == .none)
        #expect(session.shuttingDown(at: start) == .none)

        var leaving = AgentSession(openedAt: start, timing: Self.timing)
        #expect(leaving.receivedClose(code: 1000) == .answerClose(code: 1000))
        #expect(leaving.inboundEnded() == .none)

        var cut = AgentSession(openedAt: start, timing: Self.timing)
        #expect(cut.inboundEnded() == .hangUp)
    }

    @Test(
        "only loopback addresses are loopback",
        arguments: [
            ("127.0.0.1", true), ("127.1.2.3", true), ("localhost", true), ("::1", true), ("[::1]", true),
            ("::ffff:127.0.0.1", true), ("0.0.0.0", false), ("::", false), ("10.0.0.1", false), ("192.168.1.1", false),
            ("example.com", false), ("128.0.0.1", false),
        ]
    )
    func loopback(host: String, expected: Bool) {
        #expect(ListenAddress.isLoopback(host) == expected)
    }

    @Test("a non-loopback address is refused unless allowRemote; other bad values are configuration errors")
    func configurationValidation() {
        var remote = EngineHub.Configuration(host: "0.0.0.0")
        #expect(throws: EngineHubError.self) { try remote.validate() }
        remote.allowRemote = true
        #expect(throws: Never.self) { try remote.validate() }

        var badPort = EngineHub.Configuration(port: 70000)
        #expect(throws: EngineHubError.self) { try badPort.validate() }
        badPort.port = 0
        badPort.helloTimeout = .zero
        #expect(throws: EngineHubError.self) { try badPort.validate() }

        let badURL = EngineHub.Configuration(databaseURL: "postgresql://user:secret@[bad")
        do {
            try badURL.validate()
            Issue.record("a malformed database URL must be refused")
        } catch {
            #expect(error.isConfigurationError)
            #expect(!error.description.contains("secret"))
        }
    }

    @Test("binding a non-loopback address without allowRemote fails before listening")
    func bindRefusesRemote() async {
        await #expect(throws: EngineHubError.self) {
            _ = try await EngineHub.bind(configuration: .init(host: "0.0.0.0"))
        }
    }

    @Test(
        "admin routes",
        arguments: [
            (HTTPMethod.GET, "/healthz", AdminRoute.health),
            (.GET, "/admin/agents", .agents),
            (.GET, "/admin/stats?x=1", .stats),
            (
                .POST, "/admin/agents/6f1c2f1e-5b8a-4e4c-9d3a-0b6c0f7e8a91/drop",
                .drop(agentID: UUID(uuidString: "6f1c2f1e-5b8a-4e4c-9d3a-0b6c0f7e8a91")!)
            ),
            (.POST, "/admin/agents/zzz/drop", .badAgentID),
            (.GET, "/admin/agents/6f1c2f1e-5b8a-4e4c-9d3a-0b6c0f7e8a91/drop", .methodNotAllowed(allowed: "POST")),
            (.POST, "/admin/stats", .methodNotAllowed(allowed: "GET")),
            (.GET, "/admin", .notFound),
            (.GET, "/agent", .notFound),
        ]
    )
    func routes(method: HTTPMethod, uri: String, expected: AdminRoute) {
        #expect(AdminRoute(method: method, uri: uri) == expected)
    }

    @Test(
        "drop bodies",
        arguments: [
            ("", 0.0 as Double?), ("{}", 0), (#"{"seconds": 5}"#, 5), (#"{"seconds": 0.25}"#, 0.25),
            (#"{"seconds": -1}"#, nil), (#"{"seconds": "5"}"#, nil), (#"{"seconds": true}"#, nil), ("5", nil),
            ("{", nil),
        ]
    )
    func dropBodies(body: String, expected: Double?) {
        switch DropRequest.parse(Array(body.utf8)) {
        case .success(let request): #expect(request.seconds == expected)
        case .failure: #expect(expected == nil)
        }
    }
}
