import Foundation
import NIOHTTP1

/// The admin endpoints, as a pure mapping from a request to what it asks for.
enum AdminRoute: Equatable {
    case health
    case agents
    case stats
    case drop(agentID: UUID)
    case notFound
    case methodNotAllowed(allowed: String)
    case badAgentID

    init(method: HTTPMethod, uri: String) {
        let path =
            uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        switch parts.count {
        case 1 where parts[0] == "healthz":
            self = method == .GET || method == .HEAD ? .health : .methodNotAllowed(allowed: "GET")
        case 2 where parts[0] == "admin" && parts[1] == "agents":
            self = method == .GET ? .agents : .methodNotAllowed(allowed: "GET")
        case 2 where parts[0] == "admin" && parts[1] == "stats":
            self = method == .GET ? .stats : .methodNotAllowed(allowed: "GET")
        case 4 where parts[0] == "admin" && parts[1] == "agents" && parts[3] == "drop":
            guard method == .POST else {
                self = .methodNotAllowed(allowed: "POST")
                return
            }
            guard let id = UUID(uuidString: String(parts[2])) else {
                self = .badAgentID
                return
            }
            self = .drop(agentID: id)
        default:
            self = .notFound
        }
    }
}

/// The body of `POST /admin/agents/<uuid>/drop`: `{"seconds": S}`, all optional.
struct DropRequest: Equatable {
    var seconds: Double = 0

    /// A failure (with a message for the operator) when the body is not what the endpoint takes.
    static func parse(_ body: [UInt8]) -> Result<DropRequest, DropRequestError> {
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return .success(DropRequest()) }
        struct Body: Decodable { var seconds: Double? }
        guard let decoded = try? JSONDecoder().decode(Body.self, from: Data(text.utf8)) else {
            return .failure(DropRequestError(message: #"the body must be a JSON object such as {"seconds": 30}"#))
        }
        let seconds = decoded.seconds ?? 0
        guard seconds.isFinite, (0...31_536_000).contains(seconds) else {
            return .failure(DropRequestError(message: "seconds must be a number from 0 to 31536000"))
        }
        return .success(DropRequest(seconds: seconds))
    }

    var duration: Duration { .milliseconds(Int64((seconds * 1000).rounded())) }
}

struct DropRequestError: Error, Equatable {
    var message: String
}

/// A response to write: status and a JSON body.
struct AdminResponse {
    var status: HTTPResponseStatus
    var body: Data
    var allow: String?

    static func json<Value: Encodable>(_ value: Value, status: HTTPResponseStatus = .ok) -> AdminResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        let body = (try? encoder.encode(value)) ?? Data(#"{"error":"cannot encode the response"}"#.utf8)
        return AdminResponse(status: status, body: body + Data("\n".utf8))
    }

    static func error(_ status: HTTPResponseStatus, _ message: String, allow: String? = nil) -> AdminResponse {
        var response = json(["error": message], status: status)
        response.allow = allow
        return response
    }
}

/// `POST /admin/agents/<uuid>/drop`'s answer.
struct DropResponse: Encodable {
    var agentID: String
    var closedConnections: Int
    var refuseSeconds: Double

    enum CodingKeys: String, CodingKey {
        case agentID = "agent_id"
        case closedConnections = "closed_connections"
        case refuseSeconds = "refuse_seconds"
    }
}

extension EngineHub {
    /// Answers one admin request.
    func respond(method: HTTPMethod, uri: String, body: [UInt8]) -> AdminResponse {
        switch AdminRoute(method: method, uri: uri) {
        case .health:
            return .json(["status": "ok"])
        case .agents:
            return .json(["agents": agents()])
        case .stats:
            return .json(stats())
        case .drop(let agentID):
            switch DropRequest.parse(body) {
            case .failure(let error):
                return .error(.badRequest, error.message)
            case .success(let request):
                let closed = drop(agent: agentID, for: request.duration)
                return .json(
                    DropResponse(agentID: agentID.lowercased, closedConnections: closed, refuseSeconds: request.seconds)
                )
            }
        case .badAgentID:
            return .error(.notFound, "no such agent: the path must hold an agent id (a UUID)")
        case .methodNotAllowed(let allowed):
            return .error(.methodNotAllowed, "method not allowed; use \(allowed)", allow: allowed)
        case .notFound:
            return .error(
                .notFound,
                "not found; the hub serves WebSocket /agent, GET /healthz, GET /admin/agents, GET /admin/stats, POST /admin/agents/<uuid>/drop"
            )
        }
    }
}
