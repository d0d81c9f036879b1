import DigitalOcean
import DigitalOceanAdapter
import Foundation
import ReconcileCore
import Reconciler
import Timekeeping

/// One process's DigitalOcean: the real `RateBudget` in front of every request (as in the
/// client), the create's `SendGate` after the permit and right before the send, and the
/// simulated API behind, where the seed decides each request's fate. Effects happen on the
/// world's timers, so a request on the wire takes effect even if its process freezes or dies.
struct SimulatedCloud: DropletCloud {
    unowned let world: SimulationWorld
    unowned let process: SimulatedProcess

    private enum Answer {
        case ok
        case serverError
        case rateLimited(retryAfter: TimeInterval)
        /// 422: refused as asked.
        case refused(String)
        /// 422: the droplet has a pending event.
        case busy
    }

    private enum Fate {
        case answered(Answer)
        /// No answer before the client's deadline.
        case lost
    }

    /// Sends one request after the budget lets it go; `atServer` runs when it reaches DigitalOcean
    /// (unless the seed makes it fail first) and returns what to answer.
    private func exchange(
        priority: RequestPriority,
        what: String,
        creating identity: UUID? = nil,
        gate: SendGate? = nil,
        lastLook: SendGate? = nil,
        atSend: (() -> Void)? = nil,
        atServer: @escaping () -> Answer
    ) async throws -> Answer {
        let permit: RateBudget.Permit
        do {
            permit = try await process.budget.acquire(priority: priority)
        } catch {
            throw CloudFailure(kind: .transient, message: "cancelled while waiting for the rate budget")
        }
        // A destroy's last look (`lastLook`) runs where a create's gate does, but does not make the
        // request a once-only one.
        if let gate = gate ?? lastLook, !(await gate.prepare()) {
            await process.budget.finished(permit)
            throw CloudFailure(kind: .withdrawn, message: "withdrawn before sending")
        }
        // As in the client: the last check and the send in one step, nothing in between.
        if let gate = gate ?? lastLook, !gate.stillMaySend() {
            await process.budget.finished(permit)
            throw CloudFailure(kind: .withdrawn, message: "withdrawn before sending: the intent grew stale")
        }
        process.recordSend(what, creating: identity, mutating: priority == .mutation)
        atSend?()
        let sentAt = world.time.now
        let timeout = world.requestTimeout
        let arrival = sentAt.addingTimeInterval(world.faults.networkDelay())
        let box = ValueBox<Fate>()
        let faults: FaultPlan = world.faults
        let isCreate = gate != nil
        world.time.schedule(at: arrival) { [world] in
            guard world.digitalOcean.admit() else {
                box.value = .answered(.rateLimited(retryAfter: world.digitalOcean.minuteResetsIn))
                return
            }
            if faults.requestFailsBeforeEffect(create: isCreate) {
                box.value = .answered(.serverError)
                return
            }
            if isCreate, faults.createTakesEffectLate() {
                // The request reached DigitalOcean but is carried out after the client gave up.
                world.time.schedule(at: sentAt.addingTimeInterval(timeout + faults.lateEffect())) { _ = atServer() }
                box.value = .lost
                return
            }
            let answer = atServer()
            if faults.answerLost(create: isCreate) {
                box.value = .lost
            } else if faults.serverErrorAfterEffect(create: isCreate) {
                box.value = .answered(.serverError)
            } else {
                box.value = .answered(answer)
            }
        }
        let answerAt = arrival.addingTimeInterval(world.faults.networkDelay())
        do {
            try await world.time.sleep(until: min(answerAt, sentAt.addingTimeInterval(timeout)))
            if case .lost = box.value ?? .lost {
                try await world.time.sleep(until: sentAt.addingTimeInterval(timeout))
            }
        } catch {
            await process.budget.finished(permit)
            throw CloudFailure(
                kind: isCreate ? .outcomeUnknown : .transient,
                message: "cancelled with the request in flight"
            )
        }
        world.trace("\(process.name) ← \(what): \(box.value.map { "\($0)" } ?? "no answer")", logged: true)
        switch box.value ?? .lost {
        case .lost:
            await process.budget.finished(permit)
            throw CloudFailure(
                kind: isCreate ? .outcomeUnknown : .transient,
                message: "\(what): no answer within \(Int(timeout)) s"
            )
        case .answered(.rateLimited(let wait)):
            await process.budget.rateLimited(RateLimitHeaders(retryAfter: .interval(wait)), for: permit)
            throw CloudFailure(kind: .transient, message: "\(what): HTTP 429", retryAfter: .interval(wait))
        case .answered(.serverError):
            await process.budget.observe(RateLimitHeaders(), for: permit)
            throw CloudFailure(kind: isCreate ? .outcomeUnknown : .transient, message: "\(what): HTTP 500")
        case .answered(.ok):
            await process.budget.observe(RateLimitHeaders(), for: permit)
            return .ok
        case .answered(.refused(let reason)):
            await process.budget.observe(RateLimitHeaders(), for: permit)
            throw CloudFailure(kind: .permanent, message: "\(what): HTTP 422: \(reason)")
        case .answered(.busy):
            await process.budget.observe(RateLimitHeaders(), for: permit)
            throw CloudFailure(kind: .transient, message: "\(what): HTTP 422: the droplet has a pending event")
        }
    }

    /// Reads are retried like the client retries them: a few attempts with a growing pause.
    private func read<T>(_ what: String, _ atServer: @escaping () -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let box = ValueBox<T>()
            do {
                _ = try await exchange(priority: .read, what: what) {
                    box.value = atServer()
                    return .ok
                }
                if let value = box.value { return value }
                throw CloudFailure(kind: .transient, message: "\(what): empty answer")
            } catch let failure as CloudFailure where attempt < 3 && failure.kind == .transient {
                try? await process.clock.sleep(for: .milliseconds(500 * attempt))
            }
        }
    }

    func listFleetPage(_ cursor: FleetListCursor) async throws -> FleetPage {
        let page = cursor.page
        let (items, more) = try await read("GET /v2/droplets page \(page)") { world.digitalOcean.fleetPage(page) }
        return FleetPage(droplets: items, next: more ? FleetListCursor(page: page + 1, link: nil) : nil)
    }

    func droplets(identity row: UUID) async throws -> [ObservedDroplet] {
        try await read("GET /v2/droplets?tag_name=\(world.label(row))") { world.digitalOcean.visible(identity: row) }
    }

    func droplet(id: Int64) async throws -> ObservedDroplet? {
        try await read("GET /v2/droplets/\(id)") { world.digitalOcean.lookup(id) }
    }

    func problem(with order: CreateOrder) -> String? {
        DigitalOceanFleet.problem(with: order)
    }

    func create(_ order: CreateOrder, userData: UserData?, gate: SendGate) async throws -> AcceptedCreate {
        let box = ValueBox<ObservedDroplet>()
        let who = process.name
        _ = try await exchange(
            priority: .mutation,
            what: "POST /v2/droplets \(world.label(order.rowID))",
            creating: order.rowID,
            gate: gate
        ) {
            [world] in
            let droplet = world.digitalOcean.make(name: order.name, tags: order.tags, by: who)
            box.value = droplet.observed(at: world.time.now)
            if let text = userData?.text, let agent = SimulationWorld.agentInUserData(text) {
                // Booted, then cloud-init starts the agent a few seconds later.
                let delay = droplet.activeAt.timeIntervalSince(world.time.now) + 3 + world.hostileRandom() * 15
                world.startAgent(on: droplet.id, agent: agent.agent, keySHA256: agent.keySHA256, after: delay)
            }
            return .ok
        }
        guard let droplet = box.value else {
            throw CloudFailure(kind: .outcomeUnknown, message: "create answered without a droplet")
        }
        return AcceptedCreate(droplet: droplet, requestID: "sim-\(droplet.id)")
    }

    func destroy(dropletID: Int64, gate: SendGate) async throws -> DestroyOutcome {
        let box = ValueBox<Bool>()
        let who = process.name
        // Whether this destroy is one the design allows is judged as it leaves, on the rows as
        // they are then: a restore or an operator's change of mind afterwards cannot recall it.
        let check = { [world] in world.digitalOcean.checkDestroy(dropletID, by: who) }
        _ = try await exchange(
            priority: .mutation,
            what: "DELETE /v2/droplets/\(dropletID)",
            lastLook: gate,
            atSend: check
        ) {
            [world] in
            let existed = world.digitalOcean.lookup(dropletID) != nil
            world.digitalOcean.destroy(dropletID, by: who)
            box.value = existed
            return .ok
        }
        return box.value == false ? .alreadyGone : .destroyed(requestID: "sim-delete-\(dropletID)")
    }
}

extension SimulatedCloud {
    func problem(with action: DropletActionOrder) -> String? {
        DigitalOceanFleet.problem(with: action)
    }

    func perform(_ action: DropletActionOrder, gate: SendGate) async throws -> AcceptedAction {
        let box = ValueBox<Int64>()
        let who = process.name
        _ = try await exchange(
            priority: .mutation,
            what: "POST /v2/droplets/\(action.dropletID)/actions \(action.kind.type)",
            gate: gate,
            atSend: { [world] in
                if action.kind == .powerOff { world.digitalOcean.poweredOffByDaemon.insert(action.dropletID) }
            }
        ) { [world] in
            switch world.digitalOcean.startAction(action.kind, on: action.dropletID, by: who) {
            case .success(let id):
                box.value = id
                return .ok
            case .failure(.busy): return .busy
            case .failure(.refused(let reason)): return .refused(reason)
            }
        }
        guard let id = box.value else {
            throw CloudFailure(kind: .outcomeUnknown, message: "action answered without an id")
        }
        return AcceptedAction(actionID: id, requestID: "sim-action-\(id)")
    }

    func actions(ofDroplet id: Int64) async throws -> [ObservedAction] {
        try await read("GET /v2/droplets/\(id)/actions") { world.digitalOcean.history(of: id) }
    }

    func progress(ofAction id: Int64) async throws -> ActionProgress {
        guard let progress = try await read("GET /v2/actions/\(id)", { world.digitalOcean.progress(ofAction: id) })
        else {
            throw CloudFailure(kind: .permanent, message: "GET /v2/actions/\(id): HTTP 404")
        }
        return progress
    }
}

final class ValueBox<T>: @unchecked Sendable {
    var value: T?
}
