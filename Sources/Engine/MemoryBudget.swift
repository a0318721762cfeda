// Fail fast when a model cannot fit: the weights are used from the file mapping, so a file larger than the memory
// the system can give would not fail at load but page from disk on every token (seconds per token) or be
// OOM-killed later. llama-server loads such a file anyway; Sputnik refuses it at start-up with what it needs.
import Foundation

/// Memory a model needs at start-up against what the system has.
public struct MemoryBudget: Sendable, Equatable {
    /// Bytes the model's weights occupy once resident (the GGUF file's size: every tensor is used from it or
    /// replaces its pages with an equal-sized copy).
    public let weightBytes: Int
    /// Bytes the runtime needs besides the weights (scratch, KV pool, buffers).
    public let runtimeBytes: Int

    /// A budget of `weightBytes` of weights and `runtimeBytes` of everything else.
    public init(weightBytes: Int, runtimeBytes: Int) {
        self.weightBytes = weightBytes
        self.runtimeBytes = runtimeBytes
    }

    /// Total bytes needed.
    public var neededBytes: Int { weightBytes + runtimeBytes }

    /// nil when the model fits in `availableBytes` (or the available memory is unknown), else the refusal: a
    /// message stating what the model needs and what is available, in GiB.
    public func refusal(availableBytes: Int?) -> String? {
        guard let avail = availableBytes, neededBytes > avail else { return nil }
        func gib(_ b: Int) -> String { String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
        return "the model needs \(gib(neededBytes)) of memory (\(gib(weightBytes)) of weights + \(gib(runtimeBytes)) "
            + "of runtime) but only \(gib(avail)) is available; free memory, or use a smaller quantization"
    }

    /// Memory the system can give this process now, bytes: `MemAvailable` of /proc/meminfo (free plus
    /// reclaimable page cache, which includes a model file already cached), lowered to the cgroup v2 limit's
    /// headroom (`memory.max` − `memory.current`) when one is set. nil when neither can be read.
    public static func systemAvailableBytes() -> Int? {
        var avail: Int?
        if let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            avail = meminfoAvailable(info)
        }
        if let maxText = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
           let limit = Int(maxText.trimmingCharacters(in: .whitespacesAndNewlines)),
           let curText = try? String(contentsOfFile: "/sys/fs/cgroup/memory.current", encoding: .utf8),
           let current = Int(curText.trimmingCharacters(in: .whitespacesAndNewlines)) {
            let headroom = max(0, limit - current)
            avail = min(avail ?? headroom, headroom)
        }
        return avail
    }

    /// The `MemAvailable:` line of a /proc/meminfo text, bytes (the kernel reports kB).
    static func meminfoAvailable(_ text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
