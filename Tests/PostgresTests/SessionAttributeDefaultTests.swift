import Foundation
import Postgres
import Testing

/// Several hosts in a connection string must not land a replica on a hot standby: the session
/// asks for a read-write server unless the operator said otherwise.
@Suite("Multi-host connection strings default to read-write sessions")
struct SessionAttributeDefaultTests {
    static func defaults(_ text: String?, environment: [String: String] = [:]) throws -> [String] {
        try ConnectionString(text).defaultedParameters(environment: environment).map { "\($0.keyword)=\($0.value)" }
    }

    @Test(
        "several hosts, as conninfo or as a URI, ask for target_session_attrs=read-write",
        arguments: [
            "host=db1,db2 dbname=app",
            "host=db1,db2 port=5432,5433 user=citrus password=secret dbname=app",
            "hostaddr=10.0.0.1,10.0.0.2 dbname=app",
            "postgresql://db1:5432,db2:5433/app",
            "postgresql://citrus:secret@db1,db2/app?sslmode=require",
            "postgres://[2001:db8::1]:5432,[2001:db8::2]:5432/app",
        ]
    )
    func severalHostsAskForReadWrite(_ text: String) throws {
        #expect(try Self.defaults(text) == ["target_session_attrs=read-write"])
    }

    @Test(
        "one host, or no string at all, is left as it is",
        arguments: [
            "host=db1 dbname=app", "postgresql://db1:5432/app", "postgresql:///app?host=/var/run/postgresql", "",
        ]
    )
    func oneHostIsLeftAlone(_ text: String) throws {
        #expect(try Self.defaults(text).isEmpty)
        #expect(try Self.defaults(nil).isEmpty)
    }

    @Test(
        "the operator's own choice wins, in the string or in PGTARGETSESSIONATTRS",
        arguments: [
            "host=db1,db2 target_session_attrs=any",
            "postgresql://db1,db2/app?target_session_attrs=prefer-standby",
            "host=db1,db2 target_session_attrs=primary",
        ]
    )
    func operatorChoiceWins(_ text: String) throws {
        #expect(try Self.defaults(text).isEmpty)
        #expect(try Self.defaults("host=db1,db2", environment: ["PGTARGETSESSIONATTRS": "any"]).isEmpty)
    }

    @Test("hosts from PGHOST count when the string names none; the string's own host wins over PGHOST")
    func hostsFromTheEnvironment() throws {
        #expect(try Self.defaults(nil, environment: ["PGHOST": "db1,db2"]) == ["target_session_attrs=read-write"])
        #expect(
            try Self.defaults("dbname=app", environment: ["PGHOSTADDR": "10.0.0.1,10.0.0.2"])
                == ["target_session_attrs=read-write"]
        )
        #expect(try Self.defaults("host=db1 dbname=app", environment: ["PGHOST": "db1,db2"]).isEmpty)
        #expect(try Self.defaults(nil, environment: ["PGHOST": "db1"]).isEmpty)
    }

    @Test("a service file says it itself: nothing is set over it")
    func serviceFilesAreLeftAlone() throws {
        #expect(try Self.defaults("service=citrus host=db1,db2").isEmpty)
        #expect(try Self.defaults("host=db1,db2", environment: ["PGSERVICE": "citrus"]).isEmpty)
    }
}
