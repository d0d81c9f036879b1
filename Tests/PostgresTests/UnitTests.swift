import Foundation
import Postgres
import Testing

@Suite("Without a server")
struct UnitTests {
    @Test("interpolations become numbered bind parameters; literals stay SQL")
    func interpolation() {
        let name = "x'; DROP TABLE servers; --"
        let limit: Int? = nil
        let query: PostgresQuery =
            "SELECT * FROM servers WHERE name = \(name) AND n = \(limit) AND \(identifier: "Col\"umn") = \(true)"
        #expect(query.sql == "SELECT * FROM servers WHERE name = $1 AND n = $2 AND \"Col\"\"umn\" = $3")
        #expect(
            query.binds == [
                PostgresBind(type: .text, text: name), PostgresBind(type: .int8, text: nil),
                PostgresBind(type: .bool, text: "true"),
            ]
        )
        #expect(!query.description.contains("DROP"))
    }

    @Test("backoff grows exponentially, is capped, and is jittered")
    func backoff() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2, jitter: 0.5)
        for attempt in 0..<20 {
            let expected = min(0.1 * Double(1 << min(attempt, 30)), 2.0)
            for _ in 0..<20 {
                let delay = backoff.delay(attempt: attempt)
                #expect(delay <= .seconds(expected) + .nanoseconds(1))
                #expect(delay >= .seconds(expected / 2) - .nanoseconds(1))
            }
        }
        let samples = Set((0..<20).map { _ in backoff.delay(attempt: 3) })
        #expect(samples.count > 1)
    }

    @Test("passwords are found in URIs and conninfo strings")
    func redaction() throws {
        #expect(try ConnectionString("postgres://u:p%40ss@h/db").redacted == "postgres://u:***@h/db")
        #expect(try ConnectionString("host=h password='a b\\'c' user=u").redacted == "host=h password='***' user=u")
        let broken = #expect(throws: PostgresError.self) { try ConnectionString("host=h password=hunter2 trailing") }
        #expect(broken?.code == .invalidConnectionString)
        #expect(broken?.description.contains("hunter2") == false)
    }
}
