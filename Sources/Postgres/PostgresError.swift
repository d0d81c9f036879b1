/// An error from the database layer.
///
/// `description` is safe to log: it never contains a password, because connection strings are
/// scrubbed (see `ConnectionString`) before any text derived from them is stored here.
public struct PostgresError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; small on purpose so callers can switch on it.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidConnectionString, connectionFailed, connectionLost, server, decoding, invalidQuery
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The connection string (conninfo or URI) could not be parsed: a configuration error.
        public static let invalidConnectionString = Code(.invalidConnectionString)
        /// No session could be established (server down, refused, authentication failed, ...).
        public static let connectionFailed = Code(.connectionFailed)
        /// The session ended: the server went away or the connection broke. Everything bound to the
        /// session (advisory locks, LISTEN registrations, an open transaction) is gone with it.
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected a statement; `sqlState` says why.
        public static let server = Code(.server)
        /// A value in a result does not fit the requested Swift type.
        public static let decoding = Code(.decoding)
        /// A misuse caught on the client, such as a column name that does not exist.
        public static let invalidQuery = Code(.invalidQuery)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// The five-character SQLSTATE the server reported, when it reported one.
    public var sqlState: String?
    /// The primary human-readable message (the server's, or libpq's, or ours).
    public var message: String
    /// The server's DETAIL field, when present.
    public var detail: String?
    /// For decoding errors: the column that did not fit.
    public var column: String?

    public init(code: Code, message: String, sqlState: String? = nil, detail: String? = nil, column: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.column = column
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += " DETAIL: \(detail)" }
        return text
    }

    /// Well-known SQLSTATEs callers branch on.
    public enum SQLState {
        public static let uniqueViolation = "23505"
        public static let serializationFailure = "40001"
        public static let deadlockDetected = "40P01"
        public static let queryCanceled = "57014"
        public static let adminShutdown = "57P01"
        public static let undefinedTable = "42P01"
        public static let undefinedColumn = "42703"
    }
}
