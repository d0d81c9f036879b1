import Postgres
import Synchronization

/// Consumes a listener in the background and records each event with the instant it arrived,
/// so tests can wait for an event and measure delivery latency without adding polling delay.
public final class NotificationRecorder: Sendable {
    public struct Entry: Sendable {
        public var event: PostgresListener.Event
        public var arrived: ContinuousClock.Instant
    }

    private final class Storage: Sendable {
        let entries = Mutex<[Entry]>([])
    }

    private let storage = Storage()
    private let consumer: Task<Void, Never>

    public init(_ listener: PostgresListener) {
        let storage = self.storage
        consumer = Task {
            for await event in listener {
                let entry = Entry(event: event, arrived: .now)
                storage.entries.withLock { $0.append(entry) }
            }
        }
    }

    deinit { consumer.cancel() }

    public var all: [Entry] { storage.entries.withLock { $0 } }

    /// Waits for the first entry at or after position `from` that matches; returns its position
    /// and entry, or nil after `timeout`.
    public func first(
        from: Int = 0,
        timeout: Duration = .seconds(10),
        where predicate: (PostgresListener.Event) -> Bool
    ) async -> (index: Int, entry: Entry)? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let found = storage.entries.withLock { entries -> (Int, Entry)? in
                guard from < entries.count else { return nil }
                for index in from..<entries.count where predicate(entries[index].event) {
                    return (index, entries[index])
                }
                return nil
            }
            if let found { return found }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// Whether any entry from position `from` on matches, after waiting `quiet` for stragglers.
    public func none(
        from: Int = 0,
        within quiet: Duration,
        where predicate: (PostgresListener.Event) -> Bool
    ) async -> Bool {
        try? await Task.sleep(for: quiet)
        return storage.entries.withLock { entries in
            !entries.dropFirst(from).contains { predicate($0.event) }
        }
    }

    public func stop() { consumer.cancel() }
}

extension PostgresListener.Event {
    /// The notification's payload when this is a notification on `channel`.
    public func payload(on channel: String) -> String? {
        if case .notification(let notification) = self, notification.channel == channel { return notification.payload }
        return nil
    }
}
