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

/// A notification delivered by the server (`NOTIFY channel, 'payload'` or `pg_notify`).
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var pid: Int32

    public init(channel: String, payload: String, pid: Int32) {
        self.channel = channel
        self.payload = payload
        self.pid = pid
    }
}

/// LISTEN on a dedicated session, delivered as an `AsyncSequence`.
///
/// A thread of its own waits with `poll(2)` on the session's socket. When the session is lost,
/// the listener reconnects with capped exponential backoff and jitter, issues LISTEN again, and
/// yields `.reconnected`: notifications sent in between are lost (the server does not keep them),
/// so the consumer must resync from the tables. The sequence ends when the consuming task is
/// cancelled or `stop()` is called; there is one consumer.
public final class PostgresListener: AsyncSequence, Sendable {
    public enum Event: Sendable, Hashable {
        case notification(PostgresNotification)
        /// A new session is listening again; anything may have been missed.
        case reconnected
    }

    public struct Configuration: Sendable {
        public var reconnectBackoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10))
        /// How long one `poll(2)` waits at most, which bounds how late a stop is noticed.
        public var pollInterval: Duration = .milliseconds(200)
        public var connection = PostgresConnection.Configuration()

        public init() {}
    }

    public typealias Element = Event
    public typealias Failure = Never

    private let stream: AsyncStream<Event>
    private let worker: ListenerWorker

    private init(stream: AsyncStream<Event>, worker: ListenerWorker) {
        self.stream = stream
        self.worker = worker
    }

    /// Connects, LISTENs on every channel, and returns once the server has confirmed them, so a
    /// NOTIFY sent after this returns is delivered. Throws when the first session cannot be opened.
    public static func start(
        _ connectionString: String?,
        channels: [String],
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "citrus.postgres.listener", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws(PostgresError) -> PostgresListener {
        let parsed = try ConnectionString(connectionString)
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        let worker = ListenerWorker(
            connectionString: parsed,
            channels: channels,
            configuration: configuration,
            continuation: continuation,
            logger: logger
        )
        continuation.onTermination = { _ in worker.requestStop() }
        let started: Result<Void, PostgresError> = await withCheckedContinuation { started in
            startDetachedThread(named: "postgres-listener") {
                worker.run(started: { started.resume(returning: $0) })
            }
        }
        try started.get()
        return PostgresListener(stream: stream, worker: worker)
    }

    public func makeAsyncIterator() -> AsyncStream<Event>.Iterator {
        stream.makeAsyncIterator()
    }

    /// Ends the sequence and the session (within one poll interval).
    public func stop() {
        worker.requestStop()
    }

    deinit {
        worker.requestStop()
    }
}

/// The listener's thread: owns the session and everything libpq.
final class ListenerWorker: Sendable {
    private let connectionString: ConnectionString
    private let channels: [String]
    private let configuration: PostgresListener.Configuration
    private let continuation: AsyncStream<PostgresListener.Event>.Continuation
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)

    init(
        connectionString: ConnectionString,
        channels: [String],
        configuration: PostgresListener.Configuration,
        continuation: AsyncStream<PostgresListener.Event>.Continuation,
        logger: Logger
    ) {
        self.connectionString = connectionString
        self.channels = channels
        self.configuration = configuration
        self.continuation = continuation
        self.logger = logger
    }

    func requestStop() {
        stopping.store(true, ordering: .relaxed)
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func run(started: (Result<Void, PostgresError>) -> Void) {
        var session: ConnectionHandle
        do {
            session = try openSession()
        } catch {
            continuation.finish()
            started(.failure(error))
            return
        }
        started(.success(()))
        let pollMilliseconds = Int32(max(1, configuration.pollInterval.timeInterval * 1000))
        while !isStopping {
            if !waitForInput(session, timeout: pollMilliseconds) || !drain(session) {
                guard let replacement = reconnect() else { break }
                session = replacement
                continuation.yield(.reconnected)
                // Anything that arrived together with the LISTEN confirmations.
                _ = drain(session)
            }
        }
        continuation.finish()
    }

    /// Waits until the socket is readable or the timeout passes; false when the session is broken.
    private func waitForInput(_ session: ConnectionHandle, timeout: Int32) -> Bool {
        let socket = PQsocket(session.pointer)
        guard socket >= 0 else { return false }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, timeout)
        if ready < 0 { return errno == EINTR }
        return true
    }

    /// Reads what arrived and yields every notification; false when the session is broken.
    private func drain(_ session: ConnectionHandle) -> Bool {
        guard PQconsumeInput(session.pointer) == 1 else {
            logger.warning(
                "listener session lost",
                metadata: [
                    "error":
                        "\(connectionString.scrub(String(cString: PQerrorMessage(session.pointer)).trimmingWhitespace()))"
                ]
            )
            return false
        }
        while let notify = PQnotifies(session.pointer) {
            let notification = PostgresNotification(
                channel: String(cString: notify.pointee.relname),
                payload: String(cString: notify.pointee.extra),
                pid: notify.pointee.be_pid
            )
            PQfreemem(notify)
            continuation.yield(.notification(notification))
        }
        return PQstatus(session.pointer) == CONNECTION_OK
    }

    private func openSession() throws(PostgresError) -> ConnectionHandle {
        let session = ConnectionHandle(
            try PostgresConnection.connectBlocking(connectionString, configuration: configuration.connection)
        )
        for channel in channels {
            let listen = PostgresQuery(unsafeSQL: "LISTEN " + PostgresQuery.quoteIdentifier(channel))
            _ = try PostgresConnection.execute(listen, on: session.pointer).get()
        }
        return session
    }

    /// Retries with backoff until a session is listening again; nil when asked to stop.
    private func reconnect() -> ConnectionHandle? {
        var attempt = 0
        while !isStopping {
            let delay = configuration.reconnectBackoff.delay(failures: attempt + 1)
            guard sleep(delay) else { return nil }
            do {
                let session = try openSession()
                logger.info("listener reconnected", metadata: ["attempts": "\(attempt + 1)"])
                return session
            } catch {
                logger.warning(
                    "listener reconnect failed",
                    metadata: ["error": "\(error)", "attempt": "\(attempt + 1)"]
                )
                attempt += 1
            }
        }
        return nil
    }

    /// Sleeps in poll-interval slices so a stop is noticed; false when asked to stop.
    private func sleep(_ duration: Duration) -> Bool {
        var remaining = duration.timeInterval
        let slice = configuration.pollInterval.timeInterval
        while remaining > 0 {
            if isStopping { return false }
            let step = min(slice, remaining)
            _ = poll(nil, 0, Int32(max(1, step * 1000)))
            remaining -= step
        }
        return !isStopping
    }
}
