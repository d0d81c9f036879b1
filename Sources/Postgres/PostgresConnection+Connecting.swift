import CLibPQ
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

// How a session is opened: the libpq keywords this library sets under the connection string's own
// (which win), and the per-session settings its text decoding relies on.

extension PostgresConnection {
    /// Connects with libpq and prepares the session for this library's text decoding.
    static func connectBlocking(
        _ connectionString: ConnectionString,
        configuration: Configuration
    ) throws(PostgresError) -> OpaquePointer {
        // Keyword arrays let the connection string win over our defaults (expand_dbname=1):
        // `dbname` carries the whole string and is expanded by libpq.
        let timeout = max(1, Int(configuration.connectTimeout.timeInterval.rounded(.up)))
        // TCP keepalives make a silently vanished server show up as a lost session.
        var keywords = [
            "connect_timeout", "fallback_application_name", "keepalives_idle", "keepalives_interval",
            "keepalives_count",
        ]
        var values = [String(timeout), configuration.applicationName, "30", "10", "3"]
        for (keyword, value) in connectionString.defaultedParameters(environment: ProcessInfo.processInfo.environment) {
            keywords.append(keyword)
            values.append(value)
        }
        if let raw = connectionString.raw {
            keywords.append("dbname")
            values.append(raw)
        }
        let handle: OpaquePointer? = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else {
            throw PostgresError(code: .connectionFailed, message: "out of memory while connecting")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).oneLine()
            PQfinish(handle)
            throw PostgresError(code: .connectionFailed, message: connectionString.scrub(message))
        }
        // Server notices (e.g. "relation already exists, skipping") would go to stderr otherwise.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        // Text decoding expects ISO timestamps; this is per session and survives nothing else.
        let setup = PQexec(handle, "SET DateStyle TO ISO; SET IntervalStyle TO postgres; SET extra_float_digits TO 3")
        let ok = setup.map { PQresultStatus($0) == PGRES_COMMAND_OK } ?? false
        if let setup { PQclear(setup) }
        guard ok else {
            let message = String(cString: PQerrorMessage(handle)).oneLine()
            PQfinish(handle)
            throw PostgresError(code: .connectionFailed, message: connectionString.scrub(message))
        }
        return handle
    }
}
