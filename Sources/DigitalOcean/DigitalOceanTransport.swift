/// The wire under ``DigitalOceanClient``: one request out, one answer (or a failure) back. The
/// client keeps everything that gives a request its meaning (the rate budget, the last check, retries,
/// what an answer or its absence means, JSON); a transport only carries bytes. The daemon's is
/// HTTPS (`DigitalOceanHTTP`); the deterministic simulation's delivers to the DigitalOcean model
/// in virtual time, so both run the same client.
public protocol DigitalOceanTransport: Sendable {
    /// Sends `request` and waits for its whole answer, body included, for at most `timeout`.
    func send(_ request: TransportRequest, timeout: Duration) async throws(TransportFailure) -> TransportResponse

    /// Releases what the transport holds (connections); a request after this fails.
    func shutdown() async throws
}

extension DigitalOceanTransport {
    public func shutdown() async throws {}
}

public struct TransportRequest: Sendable {
    /// `GET`, `POST`, `DELETE`.
    public var method: String
    /// Path and query, as on the request line (`/v2/droplets?page=2`).
    public var pathAndQuery: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// A larger answer is refused (a failure, as if it never came).
    public var maximumResponseBytes: Int

    public init(
        method: String,
        pathAndQuery: String,
        headers: [(name: String, value: String)],
        body: [UInt8]?,
        maximumResponseBytes: Int
    ) {
        self.method = method
        self.pathAndQuery = pathAndQuery
        self.headers = headers
        self.body = body
        self.maximumResponseBytes = maximumResponseBytes
    }
}

public struct TransportResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// No answer: refused, reset, timed out. What matters to the client is whether the request may
/// have reached DigitalOcean (a create that may have been sent has an unknown outcome).
public struct TransportFailure: Error, Sendable {
    /// In fixed words of our own, never the underlying error's description (which may quote the
    /// request, its `Authorization` header too): it ends up in `last_error` and the journal.
    public var summary: String
    /// The underlying error's type, for `debugDescription`.
    public var underlying: String
    /// False only when no byte of the request can have left (a refused connection).
    public var mayHaveBeenSent: Bool

    public init(summary: String, underlying: String, mayHaveBeenSent: Bool) {
        self.summary = summary
        self.underlying = underlying
        self.mayHaveBeenSent = mayHaveBeenSent
    }
}

/// The methods the client sends.
enum RequestMethod: String, Sendable {
    case GET, POST, DELETE
}
