import Foundation

/// Which request goes where, and the request log.
extension SimulatedAccount {
    mutating func handle(_ request: SimulatedDigitalOcean.Request, now: Date) -> SimulatedDigitalOcean.Outcome {
        settleActions(now: now)
        let (path, query) = Self.split(request.uri)
        if path == "/_sim" || path.hasPrefix("/_sim/") {
            return .respond(admin(request, path: path, query: query, now: now), delay: .zero)
        }
        if path == "/admin" || path.hasPrefix("/admin/") {  // The same endpoints under another name.
            return .respond(
                admin(request, path: "/_sim" + path.dropFirst("/admin".count), query: query, now: now),
                delay: .zero
            )
        }
        let requestID = rng.uuid()
        // A DELETE may carry a body too (an untag names its droplets).
        let keepsBody = request.method == "POST" || (request.method == "DELETE" && !request.body.isEmpty)
        let route = Self.route(of: path)
        sequence += 1
        var record = SimulatorRequestRecord(
            sequence: sequence,
            time: now,
            method: request.method,
            path: request.uri,
            route: route,
            status: nil,
            requestID: requestID,
            body: keepsBody ? Self.loggedBody(request.body) : nil,
            bodyBytes: keepsBody ? request.body.count : nil
        )
        counts[RouteKey(method: request.method, route: route), default: 0] += 1

        var context = ResponseContext(
            requestID: requestID,
            host: request.header("host") ?? "127.0.0.1",
            requestedBy: request.header(SimulatedDigitalOcean.requestedByHeader)
        )
        let result = api(request, path: path, query: query, now: now, context: &context)
        let delay = Duration.milliseconds(Int64(faults.latencySeconds * 1000))
        let outcome: SimulatedDigitalOcean.Outcome
        switch result {
        case .respond(var response):
            response.headers.append(contentsOf: context.commonHeaders)
            record.status = response.status
            outcome = .respond(response, delay: delay)
        case .drop:
            outcome = .dropConnection(delay: delay)
        }
        log.append(record)
        if log.count > requestLogLimit { log.removeFirst(max(1, requestLogLimit / 10)) }
        return outcome
    }

    struct ResponseContext {
        var requestID: String
        var host: String
        /// Who sent it (``SimulatedDigitalOcean/requestedByHeader``), for the effects recorded.
        var requestedBy: String?
        var rateHeaders: [(name: String, value: String)] = []

        var commonHeaders: [(name: String, value: String)] {
            [("x-request-id", requestID)] + rateHeaders
        }
    }

    enum APIResult {
        case respond(SimulatedDigitalOcean.Response)
        case drop
    }

    mutating func api(
        _ request: SimulatedDigitalOcean.Request,
        path: String,
        query: [(String, String)],
        now: Date,
        context: inout ResponseContext
    ) -> APIResult {
        // Unknown tokens are refused before any rate-limit accounting.
        guard let token = authenticatedToken(request) else {
            context.rateHeaders = rateHeaders(window: TokenWindow(), now: now)
            return .respond(error(401, "unauthorized", "Unable to authenticate you", context))
        }
        if let refusal = count(token: token, now: now, context: &context) { return .respond(refusal) }
        let isCreate = request.method == "POST" && path == "/v2/droplets"
        if let fault = requestFault(context, create: isCreate) { return .respond(fault) }
        let result = route(request, path: path, query: query, now: now, context: context)
        return isCreate ? result : faultAfterEffect(result, context)
    }

    mutating func route(
        _ request: SimulatedDigitalOcean.Request,
        path: String,
        query: [(String, String)],
        now: Date,
        context: ResponseContext
    ) -> APIResult {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch (request.method, parts.count) {
        case ("GET", 2) where parts == ["v2", "droplets"]:
            return .respond(list(query: query, now: now, context))
        case ("POST", 2) where parts == ["v2", "droplets"]:
            return create(body: request.body, now: now, context)
        case ("DELETE", 2) where parts == ["v2", "droplets"]:
            return .respond(deleteByTag(query: query, now: now, context))
        case ("GET", 3) where parts[0] == "v2" && parts[1] == "droplets":
            return .respond(read(dropletID: Int64(parts[2]), now: now, context))
        case ("DELETE", 3) where parts[0] == "v2" && parts[1] == "droplets":
            return .respond(delete(dropletID: Int64(parts[2]), now: now, context))
        case ("POST", 4) where parts[0] == "v2" && parts[1] == "droplets" && parts[3] == "actions":
            return postAction(dropletID: Int64(parts[2]), body: request.body, now: now, context)
        case ("GET", 4) where parts[0] == "v2" && parts[1] == "droplets" && parts[3] == "actions":
            return .respond(listActions(dropletID: Int64(parts[2]), query: query, now: now, context))
        case ("GET", 5) where parts[0] == "v2" && parts[1] == "droplets" && parts[3] == "actions":
            return .respond(readAction(id: Int64(parts[4]), dropletID: Int64(parts[2]), now: now, context))
        case ("GET", 3) where parts[0] == "v2" && parts[1] == "actions":
            return .respond(readAction(id: Int64(parts[2]), now: now, context))
        case ("POST", 2) where parts == ["v2", "tags"]:
            return .respond(createTag(body: request.body, context))
        case ("GET", 3) where parts[0] == "v2" && parts[1] == "tags":
            return .respond(readTag(parts[2], now: now, context))
        case (let method, 4)
        where (method == "POST" || method == "DELETE") && parts[0] == "v2" && parts[1] == "tags"
            && parts[3] == "resources":
            return .respond(tagResources(parts[2], body: request.body, adding: method == "POST", now: now, context))
        case (let method, 4)
        where (method == "POST" || method == "GET") && parts[0] == "v2"
            && parts[1] == "projects" && parts[3] == "resources":
            return .respond(
                projectResources(
                    parts[2],
                    body: method == "POST" ? request.body : nil,
                    query: query,
                    now: now,
                    context
                )
            )
        default:
            return .respond(notFound(context))
        }
    }

    // MARK: - Helpers

    /// A POST body as the request log keeps it: JSON with the value of `user_data` replaced by a
    /// note of its size, or nil when the body is not JSON (it might be anything; only its size is
    /// kept). Never the text of `user_data`.
    static func loggedBody(_ body: [UInt8]) -> String? {
        guard !body.isEmpty, let document = try? JSONValue.parse(body) else { return nil }
        var logged = document
        if case .object(let pairs) = document {
            logged = .object(
                pairs.map { key, value in
                    guard key == "user_data", !value.isNull else { return (key, value) }
                    let size = value.stringValue.map { $0.utf8.count } ?? value.serialized().count
                    return (key, .string("<present, \(size) bytes>"))
                }
            )
        }
        return String(decoding: logged.serialized().prefix(65 * 1024), as: UTF8.self)
    }

    static func split(_ uri: String) -> (String, [(String, String)]) {
        let pieces = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(pieces[0])
        guard pieces.count > 1 else { return (path, []) }
        let query = pieces[1].split(separator: "&").map { item -> (String, String) in
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in
                (String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s))
            }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
        return (path, query)
    }

    static func encodeQuery(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~:")
        return items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(
            separator: "&"
        )
    }

    /// The route with ids replaced: `/v2/droplets/{droplet_id}/actions`.
    static func route(of path: String) -> String {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 3, parts[0] == "v2" else { return path }
        switch (parts[1], parts.count) {
        case ("droplets", 3) where Int64(parts[2]) != nil:
            return "/v2/droplets/{droplet_id}"
        case ("droplets", 4) where Int64(parts[2]) != nil && parts[3] == "actions":
            return "/v2/droplets/{droplet_id}/actions"
        case ("droplets", 5) where Int64(parts[2]) != nil && parts[3] == "actions":
            return "/v2/droplets/{droplet_id}/actions/{action_id}"
        case ("actions", 3):
            return "/v2/actions/{action_id}"
        case ("tags", 3):
            return "/v2/tags/{tag_id}"
        case ("tags", 4) where parts[3] == "resources":
            return "/v2/tags/{tag_id}/resources"
        case ("projects", 4) where parts[3] == "resources":
            return "/v2/projects/{project_id}/resources"
        default:
            return path
        }
    }
}
