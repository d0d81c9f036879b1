/// A caller's say over a request as it leaves, for requests that must not go out late (a create:
/// its settle bound counts from the intent recorded just before it).
///
/// - `prepare` runs once the rate budget has let the request go: record the intent, check that
///   this process still leads. It may suspend.
/// - `stillMaySend` runs right before the request is handed to the connection, synchronously,
///   with nothing in between that could suspend the task: a process frozen after `prepare`
///   (SIGSTOP, a paused VM) finds on resuming that its intent is stale, and sends nothing.
///
/// Either saying no means nothing is sent: the call throws `.withdrawn`.
public struct SendGate: Sendable {
    public var prepare: @Sendable () async -> Bool
    public var stillMaySend: @Sendable () -> Bool

    public init(prepare: @escaping @Sendable () async -> Bool, stillMaySend: @escaping @Sendable () -> Bool) {
        self.prepare = prepare
        self.stillMaySend = stillMaySend
    }

    /// No say: the request goes as soon as the budget allows.
    public static let open = SendGate(prepare: { true }, stillMaySend: { true })
}
