import Foundation

/// `/_sim/…`: introspection and control, outside the DigitalOcean API. No token, no rate limits, not
/// logged. The simulator binds to loopback by default; do not expose it.
///
/// - `GET /_sim/droplets`: every droplet ever made, with lifecycle times and tags.
/// - `POST /_sim/droplets`: inject one (`{"name", "tags", "region", "size", "image", "ipv6", "active", "age_seconds"}`).
/// - `GET /_sim/requests`, `DELETE /_sim/requests`: the `/v2` request log (method, path, status, time).
/// - `GET /_sim/counts`: request counts by method and route.
/// - `GET|PUT /_sim/faults`: read or change faults (partial JSON updates).
/// - `GET|PUT /_sim/rate-limits`: read or change limits; `DELETE /_sim/rate-limits/usage` forgets usage.
/// - `GET /_sim/health`.
/// - `GET /_sim/agents`: each droplet's stand-in agent (state, heartbeats sent, refusals; never the key).
/// - `POST /_sim/droplets/{id}/agent`: `{"heartbeats": false|true, "connected": false|true}`.
/// - `GET|PUT /_sim/agent-settings`: boot delay, heartbeat interval, reconnect backoff (seconds).
///
/// - `GET /_sim/requests/last-create`: the newest `POST /v2/droplets` as received (`user_data`
///   as its size only), 404 when there was none.
/// - `GET /_sim/ssh-keys`, `POST /_sim/ssh-keys` (`{"name", "id"?, "fingerprint"?}`): the account's
///   SSH keys; it starts with ``SimulatedSSHKey/standard``.
/// - `GET /_sim/vpcs`, `POST /_sim/vpcs` (`{"region", "name"?, "id"?}`): VPCs, one default per region.
/// - `GET /_sim/projects`, `POST /_sim/projects` (`{"name", "id"?}`): projects, the default first.
/// - `GET /_sim/tags`: every tag made so far.
/// - `GET /_sim/actions`: every droplet action so far.
/// - `POST /_sim/droplets/{id}/actions`: a change out of band, done at once, as a person in the
///   control panel makes it; the body is the API's (`{"type": "power_off"}`).
/// - `GET|PUT /_sim/action-settings`: how long each action type runs (seconds).
/// - `GET|POST|DELETE /_sim/action-faults`: the faults aimed at actions; POST adds one
///   (`{"kind": "lost_answer", "type": "power_off", "droplet_id": 5000000001, "count": 1}`).
///
/// Every endpoint also answers under `/admin/…` (`POST /admin/droplets/{id}/agent`, `GET /admin/agents`).
///
/// A POST, PUT or PATCH must say `Content-Type: application/json` (415 otherwise), so a web page
/// the operator visits cannot drive the simulator with a cross-site form post.
extension SimulatedAccount {
    mutating func admin(
        _ request: SimulatedDigitalOcean.Request,
        path: String,
        query: [(String, String)],
        now: Date
    ) -> SimulatedDigitalOcean.Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        encoder.outputFormatting = [.sortedKeys]
        func reply<T: Encodable>(_ status: Int, _ value: T) -> SimulatedDigitalOcean.Response {
            let body = (try? encoder.encode(value)).map { [UInt8]($0) } ?? Array("{}".utf8)
            return .init(status: status, headers: [("content-type", "application/json; charset=utf-8")], body: body)
        }
        func failure(_ status: Int, _ message: String) -> SimulatedDigitalOcean.Response {
            reply(status, ["error": message])
        }
        // A page in a browser can POST a form here (no preflight for form types); it cannot send
        // application/json without one, which this server never grants.
        if ["POST", "PUT", "PATCH"].contains(request.method), !Self.isJSON(request.header("content-type")) {
            return failure(415, "\(request.method) \(path) takes a JSON body with Content-Type: application/json")
        }
        /// Settings with the request's partial update (seconds) applied, and the answer: the new
        /// settings, or why they stay as they were.
        func patched<Settings: Encodable>(
            _ current: Settings,
            with patch: (JSONValue, Settings) throws -> Settings
        ) -> (Settings, SimulatedDigitalOcean.Response) {
            do {
                let updated = try patch(
                    try JSONValue.parse(request.body.isEmpty ? Array("{}".utf8) : request.body),
                    current
                )
                return (updated, reply(200, updated))
            } catch let error as SimulatorError {
                return (current, failure(422, error.description))
            } catch {
                return (current, failure(400, "the body must be a JSON object"))
            }
        }
        let decoder = JSONDecoder()
        switch (request.method, path) {
        case ("GET", "/_sim/health"):
            return reply(200, ["ok": true])
        case ("GET", "/_sim/droplets"):
            return reply(200, ["droplets": order.compactMap { droplets[$0]?.materialized(at: now) }])
        case ("POST", "/_sim/droplets"):
            do {
                let injection = try decoder.decode(SimulatorDropletInjection.self, from: Data(request.body))
                let droplet = try inject(injection, now: now)
                dirty = true
                return reply(201, ["droplet": droplet.materialized(at: now)])
            } catch {
                return failure(422, String(describing: error))
            }
        case ("GET", "/_sim/requests"):
            return reply(200, ["requests": log])
        case ("GET", "/_sim/requests/last-create"):
            guard let record = lastCreateRequest else { return failure(404, "no droplet create received yet") }
            return reply(200, ["request": record])
        case ("GET", "/_sim/ssh-keys"):
            return reply(200, ["ssh_keys": resources.sshKeys])
        case ("GET", "/_sim/vpcs"):
            return reply(200, ["vpcs": resources.vpcs])
        case ("GET", "/_sim/projects"):
            return reply(200, ["projects": resources.projects])
        case ("GET", "/_sim/tags"):
            return reply(200, ["tags": resources.tags])
        case ("POST", "/_sim/ssh-keys"), ("POST", "/_sim/vpcs"), ("POST", "/_sim/projects"):
            do {
                let patch = try JSONValue.parse(request.body.isEmpty ? Array("{}".utf8) : request.body)
                switch path {
                case "/_sim/ssh-keys": return reply(201, ["ssh_key": try addSSHKey(patch)])
                case "/_sim/vpcs": return reply(201, ["vpc": try addVPC(patch)])
                default: return reply(201, ["project": try addProject(patch)])
                }
            } catch let error as SimulatorError {
                return failure(422, error.description)
            } catch {
                return failure(400, "the body must be a JSON object")
            }
        case ("DELETE", "/_sim/requests"):
            log.removeAll()
            counts.removeAll()
            return .init(status: 204, headers: [], body: [])
        case ("GET", "/_sim/counts"):
            let list = counts.map { SimulatorRequestCount(method: $0.key.method, route: $0.key.route, count: $0.value) }
                .sorted { ($0.route, $0.method) < ($1.route, $1.method) }
            return reply(200, ["counts": list])
        case ("GET", "/_sim/faults"):
            return reply(200, faults)
        case ("PUT", "/_sim/faults"), ("PATCH", "/_sim/faults"):
            do {
                faults = try FaultsPatch.apply(request.body, to: faults)
                return reply(200, faults)
            } catch {
                return failure(422, String(describing: error))
            }
        case ("GET", "/_sim/rate-limits"):
            return reply(200, rateLimits)
        case ("PUT", "/_sim/rate-limits"), ("PATCH", "/_sim/rate-limits"):
            do {
                let patch = try decoder.decode(JSONValue.self, from: Data(request.body))
                var limits = rateLimits
                if let v = patch["per_minute"]?.intValue { limits.perMinute = Int(max(0, v)) }
                if let v = patch["per_hour"]?.intValue { limits.perHour = Int(max(0, v)) }
                if let v = patch["minute_window_seconds"]?.doubleValue, v > 0 { limits.minuteWindowSeconds = v }
                if let v = patch["hour_window_seconds"]?.doubleValue, v > 0 { limits.hourWindowSeconds = v }
                rateLimits = limits
                return reply(200, rateLimits)
            } catch {
                return failure(422, String(describing: error))
            }
        case ("DELETE", "/_sim/rate-limits/usage"):
            windows.removeAll()
            return .init(status: 204, headers: [], body: [])
        case ("GET", "/_sim/agents"):
            return reply(200, ["agents": agentStatuses(now: now)])
        case ("GET", "/_sim/agent-settings"):
            return reply(200, agentTiming)
        case ("PUT", "/_sim/agent-settings"), ("PATCH", "/_sim/agent-settings"):
            let (updated, response) = patched(agentTiming, with: SimulatorAgentTiming.patched)
            agentTiming = updated
            return response
        case ("GET", "/_sim/actions"):
            return reply(200, ["actions": actions.values.sorted { $0.id < $1.id }])
        case ("POST", _) where Self.dropletID(in: path, under: "actions") != nil:
            let id = Self.dropletID(in: path, under: "actions") ?? 0
            do {
                let action = try changeOutOfBand(dropletID: id, body: request.body, now: now)
                return reply(201, ["action": action])
            } catch {
                return failure(error.status, error.message)
            }
        case ("GET", "/_sim/action-settings"):
            return reply(200, actionTiming)
        case ("PUT", "/_sim/action-settings"), ("PATCH", "/_sim/action-settings"):
            let (updated, response) = patched(actionTiming, with: SimulatorActionTiming.patched)
            actionTiming = updated
            return response
        case ("GET", "/_sim/action-faults"):
            return reply(200, ["action_faults": faults.actionFaults])
        case ("POST", "/_sim/action-faults"):
            do {
                faults.actionFaults.append(try decoder.decode(SimulatorActionFault.self, from: Data(request.body)))
                return reply(201, ["action_faults": faults.actionFaults])
            } catch {
                return failure(422, String(describing: error))
            }
        case ("DELETE", "/_sim/action-faults"):
            faults.actionFaults.removeAll()
            return .init(status: 204, headers: [], body: [])
        case ("POST", _) where Self.agentControlDropletID(path) != nil:
            let id = Self.agentControlDropletID(path) ?? 0
            guard agents[id] != nil else { return failure(404, "droplet \(id) has no agent") }
            guard let patch = try? JSONValue.parse(request.body), case .object = patch else {
                return failure(
                    400,
                    #"the body must be a JSON object such as {"heartbeats": false} or {"connected": false}"#
                )
            }
            for key in ["heartbeats", "connected"] where patch[key] != nil && patch[key]?.boolValue == nil {
                return failure(422, "\(key) must be a boolean")
            }
            if let on = patch["heartbeats"]?.boolValue { agents[id]?.status.heartbeatsEnabled = on }
            if let on = patch["connected"]?.boolValue { agents[id]?.status.connectEnabled = on }
            return reply(200, ["agent": agentStatus(dropletID: id, now: now)])
        default:
            return failure(404, "no such simulator endpoint: \(request.method) \(path)")
        }
    }
}

extension SimulatedAccount {
    /// Whether a Content-Type names JSON (`application/json`, parameters allowed).
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType =
            contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return mediaType.lowercased() == "application/json"
    }

    /// The droplet id in `/_sim/droplets/{id}/agent`.
    static func agentControlDropletID(_ path: String) -> Int64? {
        dropletID(in: path, under: "agent")
    }

    /// The droplet id in `/_sim/droplets/{id}/{leaf}`.
    static func dropletID(in path: String, under leaf: String) -> Int64? {
        let parts = path.split(separator: "/")
        guard parts.count == 4, parts[0] == "_sim", parts[1] == "droplets", parts[3] == leaf else { return nil }
        return Int64(parts[2])
    }
}

/// A partial faults update: absent keys keep their current values, and a value out of range
/// refuses the whole update. Read by `SimulatorFaults.init(from:base:)`, the one reader of faults.
enum FaultsPatch {
    static func apply(_ body: [UInt8], to current: SimulatorFaults) throws -> SimulatorFaults {
        let decoder = JSONDecoder()
        decoder.userInfo[Based.base] = current
        return try decoder.decode(Based.self, from: Data(body.isEmpty ? Array("{}".utf8) : body)).faults
    }

    private struct Based: Decodable {
        static let base = CodingUserInfoKey(rawValue: "citrus.simulator.faults.base")!
        var faults: SimulatorFaults

        init(from decoder: any Decoder) throws {
            let base = decoder.userInfo[Self.base] as? SimulatorFaults ?? SimulatorFaults()
            faults = try SimulatorFaults(from: decoder, base: base)
        }
    }
}
