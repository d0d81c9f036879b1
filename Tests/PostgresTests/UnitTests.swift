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

    @Test("passwords are found in URIs and conninfo strings")
    func redaction() throws {
        #expect(try ConnectionString("postgres://u:p%40ss@h/db").redacted == "postgres://u:***@h/db")
        #expect(try ConnectionString("host=h password='a b\\'c' user=u").redacted == "host=h password='***' user=u")
        let broken = #expect(throws: PostgresError.self) { try ConnectionString("host=h password=hunter2 trailing") }
        #expect(broken?.code == .invalidConnectionString)
        #expect(broken?.description.contains("hunter2") == false)
    }
}
