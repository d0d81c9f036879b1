import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One plain HTTP/1.1 request to the hub's admin port, the whole response collected.
enum AdminTestClient {
    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw NotAnObject(body: String(decoding: body, as: UTF8.self))
            }
            return object
        }
    }

    struct NotAnObject: Error {
        var body: String
    }

    struct NoResponse: Error {}

    static func request(
        port: Int,
        method: HTTPMethod = .GET,
        path: String,
        body: String? = nil
    ) async throws -> Response {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var headers = HTTPHeaders()
            headers.add(name: "host", value: "127.0.0.1:\(port)")
            headers.add(name: "content-length", value: String(body?.utf8.count ?? 0))
            if body != nil { headers.add(name: "content-type", value: "application/json") }
            try await outbound.write(
                .head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers))
            )
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
            try await outbound.write(.end(nil))
            var head: HTTPResponseHead?
            var data = Data()
            for try await part in inbound {
                switch part {
                case .head(let responseHead): head = responseHead
                case .body(let chunk): data.append(contentsOf: chunk.readableBytesView)
                case .end:
                    guard let head else { throw NoResponse() }
                    return Response(status: Int(head.status.code), headers: head.headers, body: data)
                }
            }
            throw NoResponse()
        }
    }
}
