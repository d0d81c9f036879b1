// Stand-in until the core's Backoff lands (removed at merge).
enum Backoff {
    static func delay(failures: Int, base: Duration, cap: Duration, jitter: Double) -> Duration {
        let exp = base * (1 << min(max(failures - 1, 0), 20))
        let capped = min(exp, cap)
        return capped / 2 + capped / 2 * jitter
    }
}
