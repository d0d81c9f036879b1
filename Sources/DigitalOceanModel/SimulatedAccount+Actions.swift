import Foundation
import Timekeeping

/// A refusal in DigitalOcean's words: the status, the error `id` and the message of an error body.
struct APIRefusal: Error, Sendable {
    var status: Int
    var id: String
    var message: String

    static func unprocessable(_ message: String) -> APIRefusal {
        APIRefusal(status: 422, id: "unprocessable_entity", message: message)
    }
}

/// A droplet action's parameters, once checked.
struct ActionRequest: Sendable, Equatable {
    var type: String
    var name: String?
    var size: String?
    var disk: Bool = false
}

/// Droplet actions: what DigitalOcean refuses, how long they run, what they change, and the
/// faults aimed at them. Effects land lazily: ``settleActions(now:)`` applies every action that
/// has ended, and runs before anything reads the account.
extension SimulatedAccount {
    /// The action types the simulator performs.
    static let actionTypes: Set<String> = [
        "rename", "power_off", "power_on", "resize", "enable_backups", "disable_backups", "shutdown",
    ]
    /// The other types the spec lists (`models/droplet_actions.yml`): refused as not simulated.
    static let otherActionTypes: Set<String> = [
        "change_backup_policy", "reboot", "power_cycle", "restore",
        "password_reset", "rebuild", "change_kernel", "enable_ipv6", "snapshot",
    ]

    /// Parses and checks an action body against the droplet as it is at `now`, in the order
    /// DigitalOcean's refusals read: the body, the type, the pending event, then the type's own rules.
    func checkAction(_ body: [UInt8], for droplet: SimulatedDroplet, now: Date) throws(APIRefusal) -> ActionRequest {
        guard let document = try? JSONValue.parse(body), case .object = document else {
            throw APIRefusal(status: 400, id: "bad_request", message: "error parsing request body")
        }
        guard let type = document["type"]?.stringValue else { throw .unprocessable("Type is required.") }
        guard Self.actionTypes.contains(type) else {
            throw .unprocessable(
                Self.otherActionTypes.contains(type)
                    ? "The simulator does not perform \(type) actions."
                    : "\(type.prefix(100)) is not a valid action type."
            )
        }
        if isLocked(droplet, now: now) { throw .unprocessable("Droplet already has a pending event.") }
        let poweredOff = droplet.poweredOffAt != nil
        switch type {
        case "rename":
            guard let name = document["name"]?.stringValue else { throw .unprocessable("Name is required.") }
            if let problem = Self.nameProblem(name) { throw .unprocessable(problem) }
            return ActionRequest(type: type, name: name)
        case "power_off", "shutdown":
            if poweredOff { throw .unprocessable("Droplet is already powered off.") }
            return ActionRequest(type: type)
        case "enable_backups":
            // The policy is optional (daily when absent); the simulator keeps no policy.
            if let policy = document["backup_policy"], !policy.isNull, !isObject(policy) {
                throw .unprocessable("backup_policy must be an object.")
            }
            return ActionRequest(type: type)
        case "disable_backups":
            return ActionRequest(type: type)
        case "power_on":
            if !poweredOff { throw .unprocessable("Droplet is already powered on.") }
            return ActionRequest(type: type)
        default:
            guard let slug = document["size"]?.stringValue, let size = Catalog.size(slug) else {
                throw .unprocessable("You specified an invalid size for Droplet resize.")
            }
            let disk = document["disk"] ?? .null
            guard disk.isNull || disk.boolValue != nil else { throw .unprocessable("disk must be a boolean.") }
            guard poweredOff else { throw .unprocessable("Droplet must be powered off before it can be resized.") }
            if size.disk < diskGB(of: droplet) {
                throw .unprocessable("Size can not decrease size of Droplet's disk image.")
            }
            return ActionRequest(type: type, size: size.slug, disk: disk.boolValue ?? false)
        }
    }

    private func isObject(_ value: JSONValue) -> Bool {
        if case .object = value { return true }
        return false
    }

    /// The droplet's disk in GB: its own after a resize without its disk, else its size's.
    func diskGB(of droplet: SimulatedDroplet) -> Int64 {
        droplet.disk ?? Catalog.size(droplet.size)?.disk ?? 0
    }

    /// Locked: being created, being deleted, or an action still in progress. Any action sent now
    /// gets "Droplet already has a pending event."
    func isLocked(_ droplet: SimulatedDroplet, now: Date) -> Bool {
        if droplet.deleteRequestedAt != nil || droplet.apiStatus(at: now) == "new" { return true }
        return unsettledActionIDs.contains { actions[$0]?.dropletID == droplet.id && now < actions[$0]?.endsAt ?? now }
    }

    /// Starts an action now; it ends after its timing (at once when `immediately`).
    @discardableResult
    mutating func startAction(
        _ request: ActionRequest,
        on droplet: SimulatedDroplet,
        now: Date,
        ending: SimulatedAction.Ending = .completed,
        outOfBand: Bool = false
    ) -> SimulatedAction {
        let duration = outOfBand ? .zero : actionTiming.duration(type: request.type, disk: request.disk)
        let action = SimulatedAction(
            id: nextActionID,
            dropletID: droplet.id,
            type: request.type,
            region: droplet.region,
            startedAt: now,
            endsAt: now.adding(duration),
            ending: ending,
            name: request.name,
            size: request.size,
            disk: request.type == "resize" ? request.disk : nil,
            outOfBand: outOfBand,
            settled: false
        )
        nextActionID += 1
        actions[action.id] = action
        unsettledActionIDs.insert(action.id)
        dirty = true
        return action
    }

    /// Puts the effect of every action that has ended by `now` on its droplet, oldest first.
    mutating func settleActions(now: Date) {
        guard !unsettledActionIDs.isEmpty else { return }
        let ended = unsettledActionIDs.compactMap { actions[$0] }.filter { $0.endsAt <= now }
            .sorted { ($0.endsAt, $0.id) < ($1.endsAt, $1.id) }
        for var action in ended {
            if action.ending == .completed, var droplet = droplets[action.dropletID] {
                apply(action, to: &droplet)
                droplets[droplet.id] = droplet
            }
            action.settled = true
            actions[action.id] = action
            unsettledActionIDs.remove(action.id)
            dirty = true
            if !action.outOfBand { record(.actionEnded(action)) }
        }
    }

    private func apply(_ action: SimulatedAction, to droplet: inout SimulatedDroplet) {
        switch action.type {
        case "rename":
            droplet.name = action.name ?? droplet.name
        case "power_off", "shutdown":
            droplet.poweredOffAt = action.endsAt
        case "enable_backups":
            droplet.backups = true
        case "disable_backups":
            droplet.backups = false
        case "power_on":
            droplet.poweredOffAt = nil
        case "resize":
            guard let slug = action.size, let size = Catalog.size(slug) else { return }
            // CPU and memory follow the size; the disk only with `disk: true` (and never shrinks).
            let disk = action.disk == true ? size.disk : diskGB(of: droplet)
            droplet.size = slug
            droplet.disk = disk == size.disk ? nil : disk
        default:
            break
        }
    }

    /// A change made outside the API, as a person in the control panel makes it: the same body and
    /// the same rules as `POST /v2/droplets/{id}/actions`, but done at once (a completed action in
    /// the droplet's history), with no faults, no rate limits and no entry in the request log.
    mutating func changeOutOfBand(dropletID: Int64, body: [UInt8], now: Date) throws(APIRefusal) -> SimulatedAction {
        guard let droplet = droplets[dropletID], droplet.apiStatus(at: now) != nil else {
            throw APIRefusal(status: 404, id: "not_found", message: "no droplet \(dropletID)")
        }
        let request = try checkAction(body, for: droplet, now: now)
        let action = startAction(request, on: droplet, now: now, outOfBand: true)
        settleActions(now: now)
        return actions[action.id] ?? action
    }

    /// The first action fault aimed at this action, spent by one.
    mutating func takeActionFault(type: String, dropletID: Int64) -> SimulatorActionFault.Kind? {
        guard let index = faults.actionFaults.firstIndex(where: { $0.matches(type: type, dropletID: dropletID) })
        else { return nil }
        let kind = faults.actionFaults[index].kind
        faults.actionFaults[index].count -= 1
        if faults.actionFaults[index].count <= 0 { faults.actionFaults.remove(at: index) }
        return kind
    }

    /// A droplet's create, as an action: in progress while it boots, completed once active,
    /// errored if it vanished.
    func createAction(of droplet: SimulatedDroplet) -> SimulatedAction {
        SimulatedAction(
            id: droplet.actionID,
            dropletID: droplet.id,
            type: "create",
            region: droplet.region,
            startedAt: droplet.createdAt,
            endsAt: droplet.activeAt ?? droplet.vanishesAt ?? .distantFuture,
            ending: droplet.activeAt == nil && droplet.vanishesAt != nil ? .errored : .completed,
            outOfBand: false,
            settled: true
        )
    }

    /// A droplet's actions, its create among them, newest first.
    func actionHistory(of droplet: SimulatedDroplet) -> [SimulatedAction] {
        (actions.values.filter { $0.dropletID == droplet.id } + [createAction(of: droplet)]).sorted { $0.id > $1.id }
    }

    /// Any action by id, a create's too. Actions belong to the account: they outlive their droplet.
    func action(id: Int64) -> SimulatedAction? {
        actions[id] ?? droplets.values.first { $0.actionID == id }.map(createAction(of:))
    }
}
