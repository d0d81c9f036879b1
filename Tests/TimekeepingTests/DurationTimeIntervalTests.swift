import Foundation
import Testing
import Timekeeping

@Suite("Duration and TimeInterval")
struct DurationTimeIntervalTests {
    @Test("a duration reads as seconds, fractions included")
    func toSeconds() {
        #expect(Duration.milliseconds(1_500).timeInterval == 1.5)
        #expect(Duration.seconds(-2).timeInterval == -2)
        #expect(Duration.zero.timeInterval == 0)
        #expect(abs(Duration.nanoseconds(1).timeInterval - 1e-9) < 1e-18)
    }

    @Test("seconds become a duration; negative, NaN and infinity become zero, huge values are capped")
    func fromSeconds() {
        #expect(Duration.interval(2.25) == .milliseconds(2_250))
        #expect(Duration.interval(-1) == .zero)
        #expect(Duration.interval(.nan) == .zero)
        #expect(Duration.interval(.infinity) == .zero)
        #expect(Duration.interval(1e300) == .seconds(9_000_000_000))
    }

    @Test("a date moves by a duration")
    func dateArithmetic() {
        let start = Date(timeIntervalSince1970: 1_000)
        #expect(start.adding(.milliseconds(2_500)) == Date(timeIntervalSince1970: 1_002.5))
    }
}
