import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import SystemdSupport

/// What a notifier would have sent to systemd.
final class SentNotifications: Sendable {
    private let messages = Mutex<[String]>([])
    var all: [String] { messages.withLock { $0 } }
    var notifier: SystemdNotifier { SystemdNotifier { message in self.messages.withLock { $0.append(message) } } }
}

@Suite("Readiness and reload, as systemd hears them", .timeLimit(.minutes(1)))
struct ReadinessTests {
    @Test("READY=1 comes once, with the first settled status; later ones are STATUS= only")
    func readyOnce() {
        let sent = SentNotifications()
        let readiness = Readiness(notifier: sent.notifier)
        #expect(!readiness.isReady)
        readiness.settled(status: "standby: another replica leads")
        #expect(readiness.isReady)
        readiness.settled(status: "leader: 3 rows\nconverged")
        #expect(sent.all == ["READY=1\nSTATUS=standby: another replica leads", "STATUS=leader: 3 rows converged"])
    }

    @Test("a reload before the daemon is ready sends nothing; once ready it is bracketed by RELOADING=1 and READY=1")
    func reloadBracket() {
        let sent = SentNotifications()
        let readiness = Readiness(notifier: sent.notifier)
        let reloads = Mutex(0)
        readiness.reloading { reloads.withLock { $0 += 1 } }
        #expect(sent.all.isEmpty)
        readiness.settled(status: "leader")
        readiness.reloading {
            #expect(sent.all.last?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true)
            reloads.withLock { $0 += 1 }
        }
        #expect(reloads.withLock { $0 } == 2)
        #expect(sent.all.count == 3)
        #expect(sent.all.last == "READY=1")
    }

    @Test("every hangup reloads; the service ends on graceful shutdown")
    func reloadsOnHangupUntilShutdown() async throws {
        let sent = SentNotifications()
        let readiness = Readiness(notifier: sent.notifier)
        let (hangups, hangup) = AsyncStream.makeStream(of: Void.self)
        let reloads = AsyncStream.makeStream(of: Void.self)
        let service = ReloadService(hangups: hangups, readiness: readiness) { reloads.continuation.yield() }
        try await testGracefulShutdown { trigger in
            let run = Task { try await service.run() }
            var reloaded = reloads.stream.makeAsyncIterator()
            hangup.yield()
            await reloaded.next()
            hangup.yield()
            await reloaded.next()
            trigger.triggerGracefulShutdown()
            try await run.value
        }
    }

    @Test("the reload service ends when its task is cancelled, with no hangup ever sent")
    func endsWhenCancelled() async throws {
        let readiness = Readiness(notifier: SentNotifications().notifier)
        let (hangups, hangup) = AsyncStream.makeStream(of: Void.self)
        let service = ReloadService(hangups: hangups, readiness: readiness) {}
        let run = Task { try await service.run() }
        run.cancel()
        try await run.value
        hangup.finish()
    }
}
