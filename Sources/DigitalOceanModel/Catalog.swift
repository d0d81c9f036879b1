import Foundation

/// The regions, sizes and images the simulator accepts, with the attributes the spec's
/// `region.yml`, `size.yml` and `image.yml` require.
enum Catalog {
    struct RegionInfo {
        var slug: String
        var name: String
    }
    struct SizeInfo {
        var slug: String
        var memory: Int64
        var vcpus: Int64
        var disk: Int64
        var transfer: Double
        var priceMonthly: Double
    }
    struct ImageInfo {
        var id: Int64
        var slug: String
        var name: String
        var distribution: String
        var minDisk: Int64
        var sizeGigabytes: Double
        var createdAt: String
    }

    static let regions: [RegionInfo] = [
        .init(slug: "sfo3", name: "San Francisco 3"), .init(slug: "nyc1", name: "New York 1"),
        .init(slug: "nyc3", name: "New York 3"), .init(slug: "ams3", name: "Amsterdam 3"),
        .init(slug: "fra1", name: "Frankfurt 1"), .init(slug: "lon1", name: "London 1"),
        .init(slug: "sgp1", name: "Singapore 1"),
    ]
    static let sizes: [SizeInfo] = [
        .init(slug: "s-1vcpu-512mb-10gb", memory: 512, vcpus: 1, disk: 10, transfer: 0.5, priceMonthly: 4),
        .init(slug: "s-1vcpu-1gb", memory: 1024, vcpus: 1, disk: 25, transfer: 1, priceMonthly: 6),
        .init(slug: "s-1vcpu-2gb", memory: 2048, vcpus: 1, disk: 50, transfer: 2, priceMonthly: 12),
        .init(slug: "s-2vcpu-2gb", memory: 2048, vcpus: 2, disk: 60, transfer: 3, priceMonthly: 18),
        .init(slug: "s-2vcpu-4gb", memory: 4096, vcpus: 2, disk: 80, transfer: 4, priceMonthly: 24),
        .init(slug: "s-4vcpu-8gb", memory: 8192, vcpus: 4, disk: 160, transfer: 5, priceMonthly: 48),
    ]
    static let images: [ImageInfo] = [
        .init(
            id: 129_211_873,
            slug: "ubuntu-22-04-x64",
            name: "22.04 (LTS) x64",
            distribution: "Ubuntu",
            minDisk: 7,
            sizeGigabytes: 2.38,
            createdAt: "2023-03-23T19:25:39Z"
        ),
        .init(
            id: 155_133_621,
            slug: "ubuntu-24-04-x64",
            name: "24.04 (LTS) x64",
            distribution: "Ubuntu",
            minDisk: 7,
            sizeGigabytes: 2.44,
            createdAt: "2024-04-25T12:10:46Z"
        ),
        .init(
            id: 147_390_281,
            slug: "debian-12-x64",
            name: "12 x64",
            distribution: "Debian",
            minDisk: 7,
            sizeGigabytes: 0.98,
            createdAt: "2023-12-19T10:13:28Z"
        ),
    ]
    static let regionFeatures = ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"]

    static func region(_ slug: String) -> RegionInfo? { regions.first { $0.slug == slug } }
    static func size(_ slug: String) -> SizeInfo? { sizes.first { $0.slug == slug } }
    static func image(_ slugOrID: String) -> ImageInfo? {
        images.first { $0.slug == slugOrID || String($0.id) == slugOrID }
    }
}
