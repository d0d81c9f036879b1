import CLibPQ
#if canImport(Glibc)
    import Glibc
#endif

// What owns the C side of one session: the `PGconn`, its cancel object, the notice receiver that
// keeps the server's warnings, and C strings that live only during the call that uses them.

/// Owns one `PGconn`; `PQfinish` runs when the owner goes away. Only the owning actor touches it.
final class ConnectionHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// What the session's notice receiver (`recordWarning`) last heard.
    let warnings = WarningRecorder()

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { PQfinish(pointer) }
}

/// The last WARNING the server sent on a session. libpq calls the notice receiver from within the
/// call that reads a result, on the connection's own thread, so only that thread touches it.
final class WarningRecorder: @unchecked Sendable {
    var last: PostgresError?
}

/// libpq's notice receiver: keeps WARNINGs (as errors a caller may choose to throw), drops the
/// rest (NOTICE "relation already exists, skipping" and the like), and never prints anything.
let recordWarning: PQnoticeReceiver = { context, result in
    guard let context, let result else { return }
    func field(_ code: Character) -> String? {
        guard let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
        return String(cString: value)
    }
    // `V`: the severity, never translated.
    guard field("V") == "WARNING" else { return }
    let recorder = Unmanaged<WarningRecorder>.fromOpaque(context).takeUnretainedValue()
    recorder.last = PostgresError(
        code: .server,
        message: "the server answered with a warning: \(field("M") ?? "no message")",
        sqlState: field("C"),
        detail: field("D")
    )
}

/// Owns the `PGcancel` object of one session. `PQcancel` is thread-safe (libpq documents it for
/// use from signal handlers and other threads), hence `@unchecked Sendable`.
final class Canceller: @unchecked Sendable {
    private let pointer: OpaquePointer?

    init(_ connection: OpaquePointer) {
        pointer = PQgetCancel(connection)
    }

    func cancel() {
        guard let pointer else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(pointer, &buffer, Int32(buffer.count))
    }

    deinit {
        if let pointer { PQfreeCancel(pointer) }
    }
}

/// Calls `body` with a NULL-terminated array of C strings that lives only during the call.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStringArray(strings) { body($0) }
}

func withOptionalCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0)! } }
    defer { copies.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
