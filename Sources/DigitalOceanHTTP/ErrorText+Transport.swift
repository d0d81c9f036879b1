#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import AsyncHTTPClient
import DigitalOcean
import NIOCore
import NIOPosix

/// AsyncHTTPClient's errors in words of our own.
extension ErrorText {
    /// A transport error in fixed words: never the error's own description, which may quote the
    /// request (`HTTPClientError.invalidHeaderFieldValues(["Bearer …"])`).
    public static func transportSummary(of error: any Error) -> String {
        if let http = error as? HTTPClientError {
            switch http {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "timed out"
            case .connectTimeout: return "connect timed out"
            case .tlsHandshakeTimeout: return "TLS handshake timed out"
            case .remoteConnectionClosed: return "the connection was closed"
            case .cancelled: return "cancelled"
            // `shortDescription` carries no associated values, by AsyncHTTPClient's own contract.
            case _ where http.shortDescription.hasPrefix("Invalid header field"):
                return "the HTTP client refused a request header (is the token well-formed?)"
            default: return "HTTP client error: \(http.shortDescription.lowercased())"
            }
        }
        if error is NIOConnectionError { return "connection refused or unreachable" }
        if let io = error as? IOError {
            return "I/O error \(io.errnoCode) (\(String(cString: strerror(io.errnoCode))))"
        }
        if error is CancellationError { return "cancelled" }
        let type = String(describing: Swift.type(of: error))
        if type.contains("SSL") || type.contains("TLS") {
            return "TLS failure (\(type)): check the URL's host and its certificate"
        }
        return "unexpected \(type)"
    }
}
