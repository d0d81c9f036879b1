import DigitalOceanModel
import Foundation
import Logging
import ReconcileCore
import Reconciler

/// Driving the world step by step (judged by `ConvergenceChecks`), and tearing it down.
extension SimulationWorld {
    func drive(until end: Date) {
        while !finished {
            var stepsAtThisInstant = 0
            while violations.isEmpty || keepGoing {
                let runnable = everyProcess.filter { $0.executor.runnable }
                guard !runnable.isEmpty else { break }
                runnable[index(runnable.count)].executor.runOne(pick: index)
                steps += 1
                stepsAtThisInstant += 1
                if ConvergenceChecks.livelocked(steps: stepsAtThisInstant, in: self) { return }
            }
            guard violations.isEmpty || keepGoing, time.advance(limit: end) else { return }
        }
    }

    func tearDown() {
        time.draining = true
        database.endEverySession(why: "the run ended")
        for process in everyProcess { process.stop() }
        var rounds = 0
        while rounds < 1_000_000 {
            rounds += 1
            let runnable = everyProcess.filter { $0.executor.runnable }
            if let process = runnable.first {
                process.executor.runOne { _ in 0 }
            } else if !time.advance(limit: .distantFuture) {
                break
            }
        }
    }
}
