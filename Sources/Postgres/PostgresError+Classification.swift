import TerminalText

extension PostgresError.SQLState {
    /// 42501: the role lacks a privilege (a GRANT is missing, or DDL needs the object's owner).
    public static let insufficientPrivilege = "42501"
    /// 28P01: the password was refused.
    public static let invalidPassword = "28P01"
    /// 28000: no such role, no `pg_hba.conf` entry, a refused certificate or peer/ident check.
    public static let invalidAuthorizationSpecification = "28000"
    /// 55P03: a lock was not granted in time (`lock_timeout`, or `NOWAIT`).
    public static let lockNotAvailable = "55P03"
}

extension PostgresError {
    /// The statement gave up waiting for a lock another transaction holds (SQLSTATE 55P03): it
    /// changed nothing, and may succeed once that transaction ends.
    public var isLockNotAvailable: Bool {
        sqlState == SQLState.lockNotAvailable
    }

    /// The role was given a statement it has no privilege for (SQLSTATE 42501). Waiting does not
    /// help: someone must grant it, or run it as the owner.
    public var isInsufficientPrivilege: Bool {
        sqlState == SQLState.insufficientPrivilege
    }

    /// The server refused who we said we are. Waiting does not help either. A failed connection
    /// carries no SQLSTATE (libpq reports it as text), so its message is read too; the phrases are
    /// the server's and libpq's, which are not translated unless `lc_messages` says so.
    public var isAuthenticationFailure: Bool {
        if let sqlState {
            return sqlState == SQLState.invalidPassword || sqlState == SQLState.invalidAuthorizationSpecification
        }
        guard code == .connectionFailed else { return false }
        let text = message.lowercased()
        let phrases = [
            "password authentication failed", "no pg_hba.conf entry", "peer authentication failed",
            "ident authentication failed",
            "certificate authentication failed", "no password supplied", "pg_hba.conf rejects connection",
        ]
        if phrases.contains(where: text.contains) { return true }
        // FATAL:  role "ghost" does not exist
        if let role = text.range(ofText: "role \""), text[role.upperBound...].contains("\" does not exist") {
            return true
        }
        return false
    }
}
