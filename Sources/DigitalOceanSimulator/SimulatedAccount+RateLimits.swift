import Foundation

/// Per-token sliding windows, as DigitalOcean counts: 250 a minute, 5,000 an hour.
extension SimulatedAccount {
    func rateHeaders(window: TokenWindow, now: Date) -> [(name: String, value: String)] {
        let reset =
            window.oldestInHour.map { Int64(($0 + rateLimits.hourWindowSeconds).rounded(.up)) }
            ?? Int64(now.timeIntervalSince1970)
        return [
            ("ratelimit-limit", String(rateLimits.perHour)),
            ("ratelimit-remaining", String(max(0, rateLimits.perHour - window.inHour))),
            ("ratelimit-reset", String(reset)),
        ]
    }
}
