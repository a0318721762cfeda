/// An owned, 64-byte-aligned float32 buffer for per-step scratch, allocated once at start-up.
public final class ScratchBuffer: @unchecked Sendable {
    /// First element.
    public let pointer: UnsafeMutablePointer<Float>
    /// Capacity in floats.
    public let count: Int

    /// Allocates `count` zeroed floats.
    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * 4, alignment: 64)
        raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 16))
        pointer = raw.assumingMemoryBound(to: Float.self)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
