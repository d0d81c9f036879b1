#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ReconcileCore

// How a row's droplet specification columns (migration 15) map to `DropletOptions`.

extension ServerStore {
    /// The arrays come as JSON text: exact for any element, and NULL stays NULL (the default).
    static let specificationColumns = """
        to_jsonb(s.ssh_keys)::text AS ssh_keys_json, s.vpc_uuid, to_jsonb(s.tags)::text AS tags_json,
        s.ipv6 AS wants_ipv6, s.monitoring AS wants_monitoring, s.backups AS wants_backups,
        s.with_droplet_agent, s.project_id, s.created_with, s.project_assigned
        """

    /// The row's own choices; nil when it makes none (nearly every row, on most platforms). What
    /// cannot be read as a list of texts (a nested array) is added to `problems`: the row fails
    /// alone, and the others are read on.
    static func readOptions(
        from row: PostgresRow,
        pool: StringPool,
        problems: inout [String]
    ) throws
        -> DropletOptions?
    {
        let options = DropletOptions(
            sshKeys: strings(try row.decode(String?.self, "ssh_keys_json"), column: "ssh_keys", problems: &problems),
            vpcUUID: pool.shared(try row.decode(String?.self, "vpc_uuid")),
            tags: strings(try row.decode(String?.self, "tags_json"), column: "tags", problems: &problems),
            ipv6: try row.decode(Bool?.self, "wants_ipv6"),
            monitoring: try row.decode(Bool?.self, "wants_monitoring"),
            backups: try row.decode(Bool?.self, "wants_backups"),
            withDropletAgent: try row.decode(Bool?.self, "with_droplet_agent"),
            projectID: pool.shared(try row.decode(String?.self, "project_id"))
        )
        return options.isEmpty ? nil : options
    }

    /// A text array's JSON; a NULL element reads as an empty text, which validation refuses by name.
    private static func strings(_ json: String?, column: String, problems: inout [String]) -> [String]? {
        guard let json else { return nil }
        guard let texts = try? JSONDecoder().decode([String?].self, from: Data(json.utf8)) else {
            problems.append("servers.\(column) \(json) is not a one-dimensional list of texts")
            return nil
        }
        return texts.map { $0 ?? "" }
    }
}
