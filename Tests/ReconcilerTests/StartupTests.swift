import CitrusTestKit
import Logging
import Postgres
import Reconciler
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import Timekeeping

@testable import PostgresAdapter

/// A database that answers start-up's attempts as the test says, and what start-up reported.
final class ScriptedDatabase: Sendable {
    private let state: Mutex<(answers: [(any Error)?], attempts: Int, waits: [Duration], migrations: [Int])>

    /// One answer per attempt (nil: the schema is current); past the end, the last answer again.
    init(_ answers: [(any Error)?]) {
        state = Mutex((answers, 0, [], []))
    }

    var attempts: Int { state.withLock { $0.attempts } }
    var waits: [Duration] { state.withLock { $0.waits } }

    func attempt() throws {
        let answer = state.withLock { state in
            defer { state.attempts += 1 }
            return state.answers[min(state.attempts, state.answers.count - 1)]
        }
        if let answer { throw answer }
    }

    func startup(clock: ManualClock) -> DatabaseStartup {
        DatabaseStartup(
            hooks: DatabaseStartup.Hooks(waiting: { _, delay in self.state.withLock { $0.waits.append(delay) } }),
            clock: clock,
            jitter: { 0 },
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        ) { _ in try self.attempt() }
    }
}

let refused = PostgresError(
    code: .connectionFailed,
    message: #"connection to server at "127.0.0.1", port 5432 failed: Connection refused"#
)

@Suite("Start-up waits for the database and stops at problems no wait can cure", .timeLimit(.minutes(1)))
struct StartupTests {
    @Test("a database that is not there yet is retried with growing waits until it answers")
    func retriesUntilTheDatabaseAnswers() async throws {
        let clock = ManualClock()
        let database = ScriptedDatabase([refused, refused, refused, nil])
        let run = Task { try await database.startup(clock: clock).run() }
        for wait in 1...3 {
            await clock.waitForSleeps(wait)
            clock.advance(by: .seconds(15))
        }
        try await run.value
        #expect(database.attempts == 4)
        // Jitter 0: half of 0.5 s, 1 s, 2 s.
        #expect(database.waits == [.milliseconds(250), .milliseconds(500), .seconds(1)])
    }

    @Test(
        "a refused role or a missing privilege ends start-up at once with a configuration error",
        arguments: [
            (
                PostgresError(code: .server, message: "password authentication failed", sqlState: "28P01"),
                StartupError.Code.authenticationFailed
            ),
            (
                PostgresError(code: .server, message: "permission denied for table servers", sqlState: "42501"),
                .insufficientPrivilege
            ),
        ]
    )
    func incurable(error: PostgresError, code: StartupError.Code) async throws {
        let clock = ManualClock()
        let database = ScriptedDatabase([error])
        let thrown = await #expect(throws: StartupError.self) { try await database.startup(clock: clock).run() }
        #expect(thrown?.code == code)
        #expect(database.attempts == 1)
        #expect(clock.sleepsBegun == 0)
    }

    @Test("a schema behind, met while connected, is not waited for")
    func startupErrorsPassThrough() async throws {
        let database = ScriptedDatabase([StartupError(.schemaBehind, "behind")])
        let thrown = await #expect(throws: StartupError.self) { try await database.startup(clock: ManualClock()).run() }
        #expect(thrown?.code == .schemaBehind)
    }

    @Test("graceful shutdown ends the wait for the database at once, and the loop after it never starts")
    func gracefulShutdownEndsTheWait() async throws {
        let clock = ManualClock()
        let database = ScriptedDatabase([refused])
        let loopRan = Flag()
        try await testGracefulShutdown { trigger in
            let run = Task {
                try await SequentialService(database.startup(clock: clock), Body { loopRan.set() })
                    .run()
            }
            await clock.waitForSleeps(1)
            trigger.triggerGracefulShutdown()
            try await run.value
        }
        #expect(database.attempts == 1)
        #expect(!loopRan.isSet)
    }

    @Test("cancellation ends the wait for the database at once, without another attempt")
    func cancellationEndsTheWait() async throws {
        let clock = ManualClock()
        let database = ScriptedDatabase([refused])
        let loopRan = Flag()
        let run = Task {
            try await SequentialService(database.startup(clock: clock), Body { loopRan.set() }).run()
        }
        await clock.waitForSleeps(1)
        run.cancel()
        try await run.value
        #expect(database.attempts == 1)
        #expect(clock.sleepsBegun == 1)
        #expect(!loopRan.isSet)
    }

    @Test("the loop starts after a start-up that succeeded")
    func sequence() async throws {
        let loopRan = Flag()
        let database = ScriptedDatabase([nil])
        try await SequentialService(database.startup(clock: ManualClock()), Body { loopRan.set() })
            .run()
        #expect(loopRan.isSet)
    }

    @Test("errors worth retrying are not configuration problems")
    func classification() {
        #expect(DatabaseStartup.configurationProblem(refused) == nil)
        #expect(
            DatabaseStartup.configurationProblem(PostgresError(code: .server, message: "x", sqlState: "28000"))?.code
                == .authenticationFailed
        )
        let privilege = DatabaseStartup.configurationProblem(
            PostgresError(code: .server, message: "permission denied for table servers", sqlState: "42501")
        )
        #expect(privilege?.code == .insufficientPrivilege)
        #expect(privilege?.description.contains("deploy/database-role.sql") == true)
    }
}

/// A service that runs a closure.
struct Body: Service {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    func run() async throws { body() }
}

/// A flag a service can raise from any task.
final class Flag: Sendable {
    private let raised = Mutex(false)
    var isSet: Bool { raised.withLock { $0 } }
    func set() { raised.withLock { $0 = true } }
}
