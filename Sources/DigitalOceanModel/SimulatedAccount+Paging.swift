import Foundation

/// One page of a list (`shared/parameters.yml` `page`/`per_page`, `shared/pages.yml`, `shared/meta.yml`).
struct Page {
    /// The items of the whole list on this page.
    var range: Range<Int>
    /// `links.pages` holds only the links that make sense: none on a single page.
    var links: JSONValue
    var meta: JSONValue
}

extension SimulatedAccount {
    /// The page `query` asks for (`page` from 1, `per_page` 20 by default and at most 200) of a
    /// list of `total` items served at `path`.
    static func page(of total: Int, query: [(String, String)], path: String, host: String) throws(APIRefusal) -> Page {
        func positive(_ name: String, default value: Int) throws(APIRefusal) -> Int {
            guard let text = query.last(where: { $0.0 == name })?.1 else { return value }
            guard let number = Int(text), number >= 1 else {
                throw APIRefusal(status: 400, id: "bad_request", message: "\(name) must be a positive integer")
            }
            return number
        }
        let page = try positive("page", default: 1)
        // DigitalOcean's maximum; larger values are capped.
        let perPage = min(try positive("per_page", default: 20), 200)
        let lastPage = max(1, (total + perPage - 1) / perPage)
        let start = min(total, (page - 1) * perPage)

        let base = query.filter { $0.0 != "page" }
        func link(_ number: Int) -> JSONValue {
            .string("http://\(host)\(path)?" + encodeQuery(base + [("page", String(number))]))
        }
        var pages: [(String, JSONValue)] = []
        if page > 1 {
            pages.append(("first", link(1)))
            pages.append(("prev", link(min(page - 1, lastPage))))
        }
        if page < lastPage {
            pages.append(("last", link(lastPage)))
            pages.append(("next", link(page + 1)))
        }
        return Page(
            range: start..<min(total, start + perPage),
            links: pages.isEmpty ? .object([]) : .object([("pages", .object(pages))]),
            meta: .object([("total", .int(Int64(total)))])
        )
    }
}

extension SimulatedAccount {
    /// A 200 with the page of `items` the query asks for under `key`, with `links` and `meta`.
    func pagedList<Item>(
        _ key: String,
        _ items: [Item],
        query: [(String, String)],
        path: String,
        _ context: ResponseContext,
        render: (Item) -> JSONValue
    ) -> SimulatedDigitalOcean.Response {
        do {
            let page = try Self.page(of: items.count, query: query, path: path, host: context.host)
            return json(
                200,
                [key: .array(items[page.range].map(render)), "links": page.links, "meta": page.meta],
                context
            )
        } catch {
            return self.error(error.status, error.id, error.message, context)
        }
    }
}
