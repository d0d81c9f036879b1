import Foundation
import Synchronization
import Testing
import Timekeeping

@Suite("Bounded waits: what the watchdog counts as life besides progress")
struct BoundedWaitsTests {
    /// Uptime set by the test; nothing here sleeps on it.
    final class SetClock: DaemonClock {
        private let time = Mutex(Duration.zero)
        func set(_ uptime: Duration) { time.withLock { $0 = uptime } }
        func now() -> Date { Date(timeIntervalSince1970: 0).adding(uptime()) }
        func uptime() -> Duration { time.withLock { $0 } }
        func sleep(until deadline: Date) async throws {}
        func sleep(for duration: Duration) async throws {}
    }

    @Test("a wait in progress within its deadline and grace is life now; past them, nothing is")
    func inProgress() async throws {
        let clock = SetClock()
        let waits = BoundedWaits(clock: clock, grace: .seconds(10))
        #expect(waits.lastSignOfLife(at: .zero) == nil, "no wait yet")
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        let waiting = Task {
            await waits.waiting(atMost: .seconds(30)) {
                enteredContinuation.yield()
                for await _ in release { break }
            }
        }
        for await _ in entered { break }
        #expect(waits.lastSignOfLife(at: .seconds(25)) == .seconds(25))
        #expect(waits.lastSignOfLife(at: .seconds(40)) == .seconds(40), "within the grace")
        #expect(waits.lastSignOfLife(at: .seconds(41)) == nil, "past deadline and grace")
        #expect(waits.overdue(at: .seconds(41)) == 1)
        // It ends in time: its end is the last sign of life.
        clock.set(.seconds(35))
        releaseContinuation.yield()
        await waiting.value
        #expect(waits.lastSignOfLife(at: .seconds(100)) == .seconds(35))
        #expect(waits.overdue(at: .seconds(100)) == 0)
    }

    @Test("a wait that ends after its deadline and grace is no sign of life")
    func endedLate() async throws {
        let clock = SetClock()
        let waits = BoundedWaits(clock: clock, grace: .seconds(10))
        await waits.waiting(atMost: .seconds(5)) { clock.set(.seconds(3)) }
        #expect(waits.lastSignOfLife(at: .seconds(20)) == .seconds(3))
        await waits.waiting(atMost: .seconds(5)) { clock.set(.seconds(30)) }
        #expect(waits.lastSignOfLife(at: .seconds(40)) == .seconds(3), "the late one does not count")
    }

    @Test("an error thrown by the wait ends it like an answer")
    func thrown() async throws {
        struct Timeout: Error {}
        let clock = SetClock()
        let waits = BoundedWaits(clock: clock)
        await #expect(throws: Timeout.self) {
            try await waits.waiting(atMost: .seconds(30)) { () throws(Timeout) in
                clock.set(.seconds(30))
                throw Timeout()
            }
        }
        #expect(waits.lastSignOfLife(at: .seconds(31)) == .seconds(30))
        #expect(waits.overdue(at: .seconds(1_000)) == 0)
    }
}
