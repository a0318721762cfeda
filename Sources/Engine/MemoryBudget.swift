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
    /// `advice` ends the message (what to change).
    public func refusal(availableBytes: Int?, advice: String = "free memory, or use a smaller quantization") -> String? {
        guard let avail = availableBytes, neededBytes > avail else { return nil }
        return "the model needs \(Self.gib(neededBytes)) of memory (\(Self.gib(weightBytes)) of weights + \(Self.gib(runtimeBytes)) "
            + "of runtime) but only \(Self.gib(avail)) is available; \(advice)"
    }

    /// `b` bytes as "12.3 GiB".
    public static func gib(_ b: Int) -> String { String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }

    /// Memory the system can give this process now, bytes: `MemAvailable` of /proc/meminfo (free plus
    /// reclaimable page cache, which includes a model file already cached), lowered to the container's memory
    /// limit's headroom when one is set: cgroup v2 (`memory.max` − `memory.current`) or v1
    /// (`memory/memory.limit_in_bytes` − `memory/memory.usage_in_bytes`). nil when none can be read.
    public static func systemAvailableBytes() -> Int? {
        func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
        var avail: Int?
        if let info = read("/proc/meminfo") {
            avail = meminfoAvailable(info)
        }
        let headroom = cgroupHeadroom(limit: read("/sys/fs/cgroup/memory.max"), usage: read("/sys/fs/cgroup/memory.current"))
            ?? cgroupHeadroom(limit: read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                              usage: read("/sys/fs/cgroup/memory/memory.usage_in_bytes"))
        if let headroom { avail = min(avail ?? headroom, headroom) }
        return avail
    }

    /// Bytes left under a cgroup memory limit: `limit` − `usage` (file texts), at least 0; nil when either is
    /// unreadable or the limit is unset (v2 writes "max"; v1 an enormous page-rounded number, ≥ 2^60 here).
    static func cgroupHeadroom(limit: String?, usage: String?) -> Int? {
        guard let l = limit.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }), l < 1 << 60,
              let u = usage.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else { return nil }
        return max(0, l - u)
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
