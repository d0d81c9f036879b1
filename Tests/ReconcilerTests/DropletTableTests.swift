import Foundation
import ReconcileCore
import Testing

@testable import Reconciler

@Suite("The view's table of droplets by id")
struct DropletTableTests {
    func droplet(_ id: Int64, _ name: String = "web") -> ObservedDroplet {
        ObservedDroplet(
            id: id,
            name: name,
            status: .active,
            tags: ["citrus-host"],
            createdAt: Date(timeIntervalSince1970: 0)
        )
    }

    @Test("finds, replaces, adds and removes by id, whatever the order; the last of a repeated id wins")
    func byID() {
        var table = DropletTable([droplet(1), droplet(2), droplet(3), droplet(2, "again"), droplet(4)], without: [4])
        #expect(table.count == 3)
        #expect(table[2]?.name == "again")
        #expect(table[4] == nil)
        table[1] = nil  // removing the first moves the last into its place
        #expect(table[1] == nil && table[2]?.name == "again" && table[3]?.name == "web")
        table[3] = droplet(3, "renamed")
        table[5] = droplet(5)
        table[3] = nil
        table[9] = nil  // absent: nothing happens
        #expect(table.count == 2)
        #expect(table[2]?.name == "again" && table[5]?.id == 5 && table[3] == nil)
        table[5] = nil
        table[2] = nil
        #expect(table.count == 0 && table[2] == nil)
        table[7] = droplet(7)
        #expect(table[7]?.id == 7 && table.count == 1)
    }
}
