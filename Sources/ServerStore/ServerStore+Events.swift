#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ReconcileCore

/// The audit trail in `server_events`: entries written alone, entries a row's write carries,
/// and one server's history read back.
extension ServerStore {
    /// Appends one entry to the audit trail.
    public func record(_ event: AuditEvent) async throws {
        try await connection.query(
            """
            INSERT INTO server_events
                (server_id, server_name, kind, message, droplet_id, from_status, to_status, do_request_id, created_at)
            VALUES (\(event.serverID), \(event.serverName), \(event.kind.rawValue), \(event.message), \(event.dropletID),
                    \(event.fromStatus?.rawValue), \(event.toStatus?.rawValue), \(event.requestID), \(event.at))
            """
        )
    }

    /// The audit trail of one server, oldest first. Entries of kinds this build does not know
    /// (written by a newer version) are skipped.
    public func fetchEvents(serverID: UUID) async throws -> [AuditEvent] {
        let rows = try await connection.query(
            """
            SELECT server_id, server_name, kind, message, droplet_id, from_status, to_status, do_request_id, created_at
            FROM server_events WHERE server_id = \(serverID) ORDER BY id
            """
        )
        return try rows.compactMap { row in
            guard let kind = AuditKind(rawValue: try row.decode(String.self, "kind")) else { return nil }
            return AuditEvent(
                kind: kind,
                at: try row.decode(Date.self, "created_at"),
                serverID: try row.decode(UUID?.self, "server_id"),
                serverName: try row.decode(String?.self, "server_name"),
                dropletID: try row.decode(Int64?.self, "droplet_id"),
                fromStatus: try row.decode(String?.self, "from_status").flatMap(ServerStatus.init(rawValue:)),
                toStatus: try row.decode(String?.self, "to_status").flatMap(ServerStatus.init(rawValue:)),
                requestID: try row.decode(String?.self, "do_request_id"),
                message: try row.decode(String.self, "message")
            )
        }
    }

    /// Audit entries as the JSON array the write's statement unpacks (one parameter, any count).
    static func json(_ events: [AuditEvent]) throws -> String {
        struct Entry: Encodable {
            var serverID: String?
            var serverName: String?
            var kind: String
            var message: String
            var dropletID: Int64?
            var fromStatus: String?
            var toStatus: String?
            var doRequestID: String?
            var at: Double

            enum CodingKeys: String, CodingKey {
                case serverID = "server_id", serverName = "server_name", kind, message, dropletID = "droplet_id"
                case fromStatus = "from_status", toStatus = "to_status", doRequestID = "do_request_id", at
            }
        }
        let entries = events.map {
            Entry(
                serverID: $0.serverID?.uuidString.lowercased(),
                serverName: $0.serverName,
                kind: $0.kind.rawValue,
                message: $0.message,
                dropletID: $0.dropletID,
                fromStatus: $0.fromStatus?.rawValue,
                toStatus: $0.toStatus?.rawValue,
                doRequestID: $0.requestID,
                at: $0.at.timeIntervalSince1970
            )
        }
        return String(decoding: try JSONEncoder().encode(entries), as: UTF8.self)
    }
}
