import Foundation

/// Weight-loading progress for `ServerOptions.loadProgress`: a bar redrawn in place when stderr is a terminal,
/// otherwise a plain line at every quarter (`loading model.gguf: 25%`), or a call of `plain` with the quarter.
enum LoadProgressReporter {
    static func make(label: String, plain: (@Sendable (Int) -> Void)? = nil) -> @Sendable (Int, Int) -> Void {
        let tty = isatty(2) == 1
        let state = LastShown()
        return { done, total in
            let percent = total > 0 ? min(100, done * 100 / total) : 100
            if tty {
                let width = 30
                let filled = percent * width / 100
                let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
                let mib = Double(done) / 1_048_576, all = Double(total) / 1_048_576
                var line = String(format: "\r%@ [%@] %3d%% %.0f/%.0f MiB", label, bar, percent, mib, all)
                if percent == 100 { line += "\n" }
                if state.advance(to: percent) { FileHandle.standardError.write(Data(line.utf8)) }
            } else if case let quarter = percent / 25 * 25, quarter > 0, state.advance(to: quarter) {
                if let plain { plain(quarter) } else {
                    FileHandle.standardError.write(Data("\(label): \(quarter)%\n".utf8))
                }
            }
        }
    }
}

/// The last percentage shown, so each is drawn once.
private final class LastShown: @unchecked Sendable {
    private let lock = NSLock()
    private var last = -1

    /// True when `percent` was not shown yet.
    func advance(to percent: Int) -> Bool {
        lock.withLock {
            if percent == last { return false }
            last = percent
            return true
        }
    }
}
