#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` on a new detached thread named `name` (its first 15 bytes: `ps -L`, `top -H`,
/// /proc/PID/task/*/comm). `Foundation.Thread` did this before, but the daemon's modules import
/// only FoundationEssentials (BENCHMARKS.md, "Idle resident size"); it also left names longer than
/// 15 bytes unset.
func startDetachedThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    #if canImport(Darwin)
        var thread: pthread_t?
    #else
        var thread = pthread_t()
    #endif
    let result = pthread_create(
        &thread,
        &attributes,
        { context in
            let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
            nameThisThread(start.name)
            start.body()
            return nil
        },
        start
    )
    precondition(result == 0, "pthread_create failed: \(result)")
}

/// Names the calling thread: its first 15 bytes, as the kernel keeps them. Best effort: a name is
/// for people reading `ps`, never worth failing for. (pthread_setname_np is not visible to Swift
/// without _GNU_SOURCE.)
private func nameThisThread(_ name: String) {
    #if os(Linux)
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    #endif
}
