import Foundation
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// Serves one upgraded WebSocket: feeds frames, timers and operator signals to an `AgentSession`
/// and performs what it decides.
struct AgentSessionRunner {
    let channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
    let remoteAddress: String
    let timing: AgentSession.Timing
    let registry: ConnectionRegistry
    let directory: AgentDirectory
    let logger: Logger

    private enum Event: Sendable {
        case frame(WebSocketFrame)
        case inboundEnded
        case deadline
        case signal(SessionSignal)
    }

    func serve() async {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        guard let id = registry.open(remoteAddress: remoteAddress, at: Date(), signal: { sink.yield(.signal($0)) })
        else {
            try? await channel.channel.close()
            return
        }
        defer { registry.closed(id) }
        var logger = logger
        logger[metadataKey: "remote_address"] = "\(remoteAddress)"
        logger[metadataKey: "connection"] = "\(id)"
        logger.debug("agent connection opened")

        var session = AgentSession(openedAt: .now, timing: timing)
        let deadline = DeadlineBox(session.deadline)
        do {
            try await channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await frame in inbound { sink.yield(.frame(frame)) }
                        } catch {
                            // A protocol error or reset ends the conversation like a hang-up.
                        }
                        sink.yield(.inboundEnded)
                    }
                    group.addTask {
                        try await Self.watch(deadline, sink: sink)
                    }
                    let conversation = Conversation(
                        id: id,
                        outbound: outbound,
                        allocator: channel.channel.allocator,
                        registry: registry,
                        directory: directory,
                        logger: logger
                    )
                    for await event in events {
                        let action: AgentSession.Action
                        switch event {
                        case .frame(let frame) where frame.opcode == .ping:
                            try await conversation.pong(frame.unmaskedData)
                            action = Self.action(for: frame, session: &session)
                        case .frame(let frame): action = Self.action(for: frame, session: &session)
                        case .inboundEnded: action = session.inboundEnded()
                        case .deadline: action = session.deadlinePassed(at: .now)
                        case .signal(.dropped): action = session.dropped(at: .now)
                        case .signal(.shuttingDown): action = session.shuttingDown(at: .now)
                        }
                        try await conversation.perform(action, session: &session)
                        deadline.set(session.deadline)
                        if session.phase == .finished { break }
                    }
                    // Ends the reader (and anything it was waiting for) as well as the timer.
                    channel.channel.close(promise: nil)
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("agent connection ended with an error", metadata: ["error": "\(error)"])
        }
        logger.debug(
            "agent connection closed",
            metadata: session.agentID.map { ["agent_id": "\($0.lowercased)"] } ?? [:]
        )
    }

    private static func action(for frame: WebSocketFrame, session: inout AgentSession) -> AgentSession.Action {
        let now = ContinuousClock.now
        switch frame.opcode {
        case .text:
            return session.receivedText(String(buffer: frame.unmaskedData), at: now)
        case .connectionClose:
            var data = frame.unmaskedData
            return session.receivedClose(code: data.readInteger(as: UInt16.self))
        case .ping, .pong:
            session.receivedControl(at: now)
            return .none
        default:
            return session.receivedBinary(at: now)
        }
    }

    /// Wakes the conversation when the session's deadline passes. The deadline moves as the
    /// conversation goes on, so it is re-read after every wake-up.
    private static func watch(_ deadline: DeadlineBox, sink: AsyncStream<Event>.Continuation) async throws {
        while !Task.isCancelled {
            guard let next = deadline.get() else {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            if ContinuousClock.now >= next {
                sink.yield(.deadline)
                // Give the conversation time to act on it before looking again.
                try await Task.sleep(for: .milliseconds(50))
            } else {
                try await Task.sleep(until: next, clock: .continuous)
            }
        }
    }
}

/// The session's deadline, shared between the conversation and its timer.
private final class DeadlineBox: Sendable {
    private let value: Mutex<ContinuousClock.Instant?>

    init(_ initial: ContinuousClock.Instant?) { value = Mutex(initial) }

    func get() -> ContinuousClock.Instant? { value.withLock { $0 } }
    func set(_ new: ContinuousClock.Instant?) { value.withLock { $0 = new } }
}

/// The side effects of one connection's actions: frames out, database, counters, log lines.
private struct Conversation {
    let id: Int
    let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
    let allocator: ByteBufferAllocator
    let registry: ConnectionRegistry
    let directory: AgentDirectory
    let logger: Logger

    func perform(_ action: AgentSession.Action, session: inout AgentSession) async throws {
        switch action {
        case .none:
            return
        case .authenticate(let agentID, let key):
            registry.claimed(id, agentID: agentID)
            let outcome: AuthenticationOutcome =
                registry.isDropped(agentID, at: .now)
                ? .refused(.droppedByOperator)
                : await directory.authenticate(agentID: agentID, key: key)
            try await perform(session.authenticationFinished(outcome, at: .now), session: &session)
        case .welcome(let agentID, let credential):
            try await sendText(HubMessage.welcome(credential: credential))
            registry.welcomed(id)
            logger.info(
                "agent welcomed",
                metadata: [
                    "agent_id": "\(agentID.lowercased)", "outcome": "welcome",
                    "credential": credential == nil ? "kept" : "issued",
                ]
            )
        case .refuse(let agentID, let kind):
            registry.refused(kind)
            var metadata: Logger.Metadata = ["outcome": "refused", "reason": "\(kind.reason)"]
            metadata["agent_id"] = agentID.map { "\($0.lowercased)" } ?? "(not a UUID)"
            logger.notice("agent refused", metadata: metadata)
            try await sendText(HubMessage.refused(reason: kind.reason))
            try await sendClose(code: CloseCode.refused, reason: "refused")
        case .recordHeartbeat(let agentID):
            let recorded = await directory.recordHeartbeat(agentID: agentID)
            registry.heartbeat(id, at: Date(), recorded: recorded)
            logger.trace("heartbeat", metadata: ["agent_id": "\(agentID.lowercased)", "recorded": "\(recorded)"])
        case .close(let code, let reason, let cause):
            registry.closedByHub(cause)
            var metadata: Logger.Metadata = ["outcome": "\(cause)", "close_code": "\(code)"]
            if let agentID = session.agentID { metadata["agent_id"] = "\(agentID.lowercased)" }
            logger.info("closing agent connection: \(reason)", metadata: metadata)
            try await sendClose(code: code, reason: reason)
        case .answerClose(let code):
            // Echo the agent's code, as RFC 6455 asks; 1005 ("none given") cannot be sent.
            try? await sendClose(code: code.flatMap { $0 == 1005 ? nil : $0 }, reason: "")
        case .hangUp:
            return
        }
    }

    func pong(_ data: ByteBuffer) async throws {
        try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, data: data))
    }

    private func sendText(_ text: String) async throws {
        try await outbound.write(WebSocketFrame(fin: true, opcode: .text, data: allocator.buffer(string: text)))
    }

    private func sendClose(code: UInt16?, reason: String) async throws {
        var data = allocator.buffer(capacity: 2 + reason.utf8.count)
        if let code {
            data.writeInteger(code)
            // A close reason may hold at most 123 bytes.
            data.writeString(String(decoding: reason.utf8.prefix(123), as: UTF8.self))
        }
        try await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
    }
}
