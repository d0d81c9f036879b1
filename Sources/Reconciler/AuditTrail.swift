#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore

/// Writes each audit event twice: to the log (the journal, with structured fields, when run by
/// systemd) and durably to `server_events`. Events that describe a row's change are stored by the
/// row's write itself, in the same statement (`ServerRepository.update`), and only journalled here.
public struct AuditTrail: Sendable {
    public var logger: Logger
    public var repository: any ServerRepository

    public init(logger: Logger, repository: any ServerRepository) {
        self.logger = logger
        self.repository = repository
    }

    /// Writes an event that stands alone (no row change carries it): to the journal, then to
    /// `server_events`.
    public func emit(_ event: AuditEvent) async {
        journal([event])
        do {
            try await repository.record(event)
        } catch {
            // The journal entry above is already written; the durable copy is retried nowhere, so say so.
            logger.warning(
                "could not record audit event in server_events: \(error)",
                metadata: [
                    "MESSAGE_ID": "\(event.kind.messageID)",
                    "SERVER_ID": "\(event.serverID?.uuidString.lowercased() ?? "")",
                ]
            )
        }
    }

    /// Puts events in the journal only: those a row's write has already stored with the row.
    public func journal(_ events: [AuditEvent]) {
        for event in events {
            logger.log(level: Self.level(of: event.kind), "\(event.message)", metadata: Self.metadata(of: event))
        }
    }

    static func level(of kind: AuditKind) -> Logger.Level {
        switch kind {
        case .failed: .error
        case .destroySending: .info
        case .createUncertain, .retrying, .orphanSeen, .duplicateResolved, .destroysBraked: .warning
        default: .notice
        }
    }

    /// The journal fields the design promises: MESSAGE_ID, SERVER_ID, SERVER_NAME, DROPLET_ID,
    /// FROM_STATUS, TO_STATUS, DO_REQUEST_ID (each only where known).
    static func metadata(of event: AuditEvent) -> Logger.Metadata {
        var fields: Logger.Metadata = [
            "MESSAGE_ID": "\(event.kind.messageID)",
            "CITRUS_EVENT": "\(event.kind.rawValue)",
        ]
        if let id = event.serverID { fields["SERVER_ID"] = "\(id.uuidString.lowercased())" }
        if let name = event.serverName { fields["SERVER_NAME"] = "\(name)" }
        if let droplet = event.dropletID { fields["DROPLET_ID"] = "\(droplet)" }
        if let from = event.fromStatus { fields["FROM_STATUS"] = "\(from.rawValue)" }
        if let to = event.toStatus { fields["TO_STATUS"] = "\(to.rawValue)" }
        if let request = event.requestID { fields["DO_REQUEST_ID"] = "\(request)" }
        return fields
    }
}
