import CLibPQ
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import Logging
import Synchronization
import TerminalText
import Timekeeping

/// One libpq session. Every libpq call runs on the connection's own thread (the actor's executor).
///
/// When the session ends (server restart, network failure), calls throw
/// `PostgresError.Code.connectionLost` and keep throwing it until `reconnect()` establishes a new
/// session. Nothing reconnects behind the caller's back: whatever was bound to the old session
/// (advisory locks, an open transaction, prepared state) is gone, and the caller must know that.
public actor PostgresConnection {
    public struct Configuration: Sendable {
        /// How `reconnect()` spaces its attempts.
        public var reconnectBackoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10))
        /// Gives up connecting after this long when the server does not answer (libpq's `connect_timeout`).
        public var connectTimeout: Duration = .seconds(10)
        /// `application_name` shown in `pg_stat_activity`, unless the connection string sets one.
        public var applicationName = "citrus-reconciler"
        /// Whether a statement the server answers with a WARNING throws it instead of returning,
        /// for sessions where nothing may count as done half-way: a commit whose wait for a
        /// synchronous standby was cancelled (a cancelled task sends a cancel request) is
        /// answered with success and a WARNING, and stands on the primary alone.
        public var warningsFail = false

        public init() {}
    }

    public let connectionString: ConnectionString
    public let configuration: Configuration
    private let executor: ThreadExecutor
    private let logger: Logger
    private var connection: ConnectionHandle?
    private var handle: OpaquePointer? { connection?.pointer }
    private var canceller: Canceller?
    /// Increments with every new session; lets callers tell "same session" from "reconnected".
    public private(set) var sessionNumber = 0
    /// The server process serving the current session.
    public private(set) var backendPID: Int32 = 0

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private init(connectionString: ConnectionString, configuration: Configuration, logger: Logger) {
        self.connectionString = connectionString
        self.configuration = configuration
        self.logger = logger
        self.executor = ThreadExecutor(name: "postgres-connection")
    }

    /// Opens a session. `connectionString` is a conninfo string or URI; nil uses libpq's defaults
    /// (`PG*` variables, service files, `.pgpass`).
    public static func connect(
        _ connectionString: String?,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "citrus.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws(PostgresError) -> PostgresConnection {
        let parsed = try ConnectionString(connectionString)
        let connection = PostgresConnection(connectionString: parsed, configuration: configuration, logger: logger)
        try await connection.open()
        return connection
    }

    deinit {
        // The handle's owner finishes the session; the thread exits once idle.
        executor.shutdown()
    }

    /// Whether the session is usable as far as libpq knows (no round trip).
    public var isConnected: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Whether the current session is encrypted with TLS (libpq's `PQsslInUse`); false without one.
    public var isEncrypted: Bool {
        guard let handle else { return false }
        return PQsslInUse(handle) == 1
    }

    /// The host the current session is connected to, as libpq names it (`PQhost`): a host name,
    /// an address, or a Unix socket directory. Nil without a session.
    public var serverHost: String? {
        guard let handle, let host = PQhost(handle) else { return nil }
        return String(cString: host)
    }

    // MARK: Statements

    /// Runs one statement and returns its rows (copied out; nothing refers to libpq afterwards).
    /// Cancelling the calling task asks the server to cancel the statement.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws(PostgresError) -> PostgresRows {
        let canceller = self.canceller
        let result: Result<PostgresRows, PostgresError> = await withTaskCancellationHandler {
            Result { () throws(PostgresError) in try run(query) }
        } onCancel: {
            canceller?.cancel()
        }
        return try result.get()
    }

    /// Runs several statements separated by semicolons (a migration, say) with the simple query
    /// protocol. Scripts take no bind parameters; an interpolated value is rejected.
    public func runScript(_ script: PostgresQuery) throws(PostgresError) {
        guard script.binds.isEmpty else {
            throw PostgresError(code: .invalidQuery, message: "a script cannot take bind parameters")
        }
        try run(script, simple: true)
    }

    /// Runs `body` inside BEGIN … COMMIT; any error thrown by it (or by COMMIT) rolls back.
    ///
    /// Only use `connection` inside `body`: other users of this connection would run inside the
    /// transaction too.
    @discardableResult
    public func transaction<Value: Sendable>(
        _ body: @Sendable (_ connection: PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try run("BEGIN")
        let value: Value
        do {
            value = try await body(self)
        } catch {
            if isConnected, let handle, PQtransactionStatus(handle) != PQTRANS_IDLE { _ = try? run("ROLLBACK") }
            throw error
        }
        let commit = try run("COMMIT")
        if commit.commandTag == "ROLLBACK" {
            // The server answers COMMIT with ROLLBACK when a statement in the transaction failed
            // and the error was swallowed by `body`.
            throw PostgresError(
                code: .server,
                message: "the transaction was rolled back because a statement in it failed"
            )
        }
        return value
    }

    // MARK: Advisory locks (session level)

    /// Tries to take the session-level advisory lock `key` without waiting. It stays held until
    /// `advisoryUnlock(_:)` or until the session ends (see `connectionLost`). On a standby (in
    /// recovery) nothing is tried and it throws: a hot standby grants advisory locks of its own,
    /// which no session on the primary sees, so one taken there coordinates nothing.
    public func tryAdvisoryLock(_ key: Int64) async throws(PostgresError) -> Bool {
        let row = try await query(
            """
            SELECT pg_is_in_recovery() AS standby,
                   CASE WHEN pg_is_in_recovery() THEN false ELSE pg_try_advisory_lock(\(key)) END AS locked
            """
        ).single()
        if try row.decode(Bool.self, "standby") {
            throw PostgresError(
                code: .server,
                message:
                    "the database server is a standby (in recovery), read-only; an advisory lock there coordinates nothing (connect to the primary)"
            )
        }
        return try row.decode(Bool.self, "locked")
    }

    /// Releases the session-level advisory lock `key`; false when this session did not hold it.
    @discardableResult
    public func advisoryUnlock(_ key: Int64) async throws(PostgresError) -> Bool {
        try await query("SELECT pg_advisory_unlock(\(key)) AS unlocked").single().decode(Bool.self, "unlocked")
    }

    // MARK: Sessions

    /// Replaces a lost (or healthy) session with a new one, retrying with capped exponential
    /// backoff and jitter until it succeeds or the task is cancelled. A new session holds no
    /// advisory locks.
    public func reconnect() async throws {
        close()
        var failures = 0
        while true {
            do {
                try open()
                return
            } catch {
                failures += 1
                let delay = configuration.reconnectBackoff.delay(failures: failures)
                logger.warning(
                    "database reconnect failed; retrying",
                    metadata: [
                        "error": "\(error)", "attempt": "\(failures)", "retry_in": "\(DurationText.format(delay))",
                    ]
                )
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Ends the session. Further calls throw `connectionLost` until `reconnect()`.
    public func close() {
        canceller = nil
        connection = nil
    }

    private func open() throws(PostgresError) {
        close()
        let handle = try Self.connectBlocking(connectionString, configuration: configuration)
        let owner = ConnectionHandle(handle)
        // The recorder lives as long as the handle that calls into it.
        PQsetNoticeReceiver(handle, recordWarning, Unmanaged.passUnretained(owner.warnings).toOpaque())
        connection = owner
        canceller = Canceller(handle)
        backendPID = PQbackendPID(handle)
        sessionNumber += 1
        logger.debug(
            "database session opened",
            metadata: ["backend_pid": "\(backendPID)", "session": "\(sessionNumber)"]
        )
    }

    /// Runs a statement on the connection's thread (we are on it: actor isolation).
    @discardableResult
    private func run(_ query: PostgresQuery, simple: Bool = false) throws(PostgresError) -> PostgresRows {
        let handle = try liveHandle()
        connection?.warnings.last = nil
        let result = Self.execute(query, on: handle, simple: simple)
        try checkSession(handle)
        let rows = try result.get()
        try throwWarningIfItFails()
        return rows
    }

    /// With `warningsFail`, the warning the server sent during the statement just run, if any.
    private func throwWarningIfItFails() throws(PostgresError) {
        guard configuration.warningsFail, let warning = connection?.warnings.last else { return }
        connection?.warnings.last = nil
        throw warning
    }

    /// The session's handle; `connectionLost` once the session has ended.
    private func liveHandle() throws(PostgresError) -> OpaquePointer {
        guard let handle else {
            throw PostgresError(code: .connectionLost, message: "the database session has ended; reconnect to continue")
        }
        return handle
    }

    /// After a statement: a session libpq found gone is closed, and the statement fails with
    /// `connectionLost` whatever it returned.
    private func checkSession(_ handle: OpaquePointer) throws(PostgresError) {
        guard PQstatus(handle) != CONNECTION_OK else { return }
        let message = String(cString: PQerrorMessage(handle)).oneLine()
        close()
        logger.warning("database session lost", metadata: ["error": "\(message)"])
        throw PostgresError(
            code: .connectionLost,
            message: message.isEmpty ? "the database session ended" : connectionString.scrub(message)
        )
    }

    /// Runs one statement and turns each row into a value as it arrives (libpq's single-row mode),
    /// so a read of many rows is never held whole: not by libpq, not as strings, only as what
    /// `transform` makes of each row. A `transform` that throws fails the statement; the rest of
    /// its rows are read and dropped, so the session stays usable. Cancelling the calling task
    /// asks the server to cancel the statement.
    /// - Parameter capacity: room made for this many values at once (a guess is fine): a large
    ///   read grown by doubling holds up to three times the size of its values while it copies.
    public func query<Row: Sendable>(
        _ query: PostgresQuery,
        reservingCapacity capacity: Int = 0,
        eachRow transform: @Sendable (PostgresRow) throws -> Row
    ) async throws -> [Row] {
        let canceller = self.canceller
        let result: Result<[Row], any Error> = await withTaskCancellationHandler {
            Result { try stream(query, capacity: capacity, transform) }
        } onCancel: {
            canceller?.cancel()
        }
        return try result.get()
    }

    private func stream<Row>(
        _ query: PostgresQuery,
        capacity: Int,
        _ transform: (PostgresRow) throws -> Row
    ) throws -> [Row] {
        let handle = try liveHandle()
        if let refusal = Self.refusal(of: query) { throw refusal }
        connection?.warnings.last = nil
        let types = query.binds.map { Oid($0.type.oid) }
        let sent = withOptionalCStringArray(query.binds.map(\.text)) { values in
            PQsendQueryParams(handle, query.sql, Int32(query.binds.count), types, values, nil, nil, 0)
        }
        var rows: [Row] = []
        var failure: (any Error)?
        if sent == 1 {
            rows.reserveCapacity(capacity)
            // Should single-row mode be refused, the rows come in one result, read the same way.
            _ = PQsetSingleRowMode(handle)
            var names: ColumnNames?
            while let pointer = PQgetResult(handle) {
                let result = ResultHandle(pointer)
                switch result.status {
                case PGRES_SINGLE_TUPLE, PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                    guard failure == nil, PQntuples(pointer) > 0 else { continue }
                    let columns = names ?? result.columnNames()
                    names = columns
                    do {
                        for row in 0..<PQntuples(pointer) {
                            rows.append(try transform(result.row(row, names: columns)))
                        }
                    } catch {
                        failure = error
                    }
                default:
                    failure = failure ?? result.serverError()
                }
            }
        } else {
            let message = String(cString: PQerrorMessage(handle)).oneLine()
            failure = PostgresError(code: .connectionLost, message: connectionString.scrub(message))
        }
        try checkSession(handle)
        if let failure { throw failure }
        try throwWarningIfItFails()
        return rows
    }

    static func execute(
        _ query: PostgresQuery,
        on handle: OpaquePointer,
        simple: Bool = false
    ) -> Result<PostgresRows, PostgresError> {
        if let refusal = refusal(of: query) { return .failure(refusal) }
        let types = query.binds.map { Oid($0.type.oid) }
        let pointer: OpaquePointer? =
            simple
            ? PQexec(handle, query.sql)
            : withOptionalCStringArray(query.binds.map(\.text)) { values in
                PQexecParams(handle, query.sql, Int32(query.binds.count), types, values, nil, nil, 0)
            }
        guard let pointer else {
            let message = String(cString: PQerrorMessage(handle)).oneLine()
            return .failure(PostgresError(code: .connectionLost, message: message))
        }
        let result = ResultHandle(pointer)
        switch result.status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return .success(result.rows())
        default:
            return .failure(result.serverError())
        }
    }

    /// libpq takes values as C strings, which end at the first NUL; Postgres text cannot hold one
    /// either. Such a value is refused rather than stored silently shortened.
    static func refusal(of query: PostgresQuery) -> PostgresError? {
        guard let position = query.binds.firstIndex(where: { $0.text?.utf8.contains(0) == true }) else { return nil }
        return PostgresError(
            code: .invalidQuery,
            message: "bind parameter $\(position + 1) contains a NUL byte, which Postgres text cannot hold"
        )
    }
}
