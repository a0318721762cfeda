/// A non-owning float32 view of raw memory with a shape, outermost dimension first (C order).
public struct Tensor: @unchecked Sendable {
    /// First element.
    public let data: UnsafeMutablePointer<Float>
    /// Dimensions, outermost first; the innermost is contiguous.
    public let shape: [Int]

    /// A view of `shape.reduce(1, *)` floats at `data`.
    public init(_ data: UnsafeMutablePointer<Float>, shape: [Int]) {
        self.data = data
        self.shape = shape
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// The sub-tensor at `index` of the outermost dimension (shape `shape.dropFirst()`).
    public subscript(index: Int) -> Tensor {
        precondition(!shape.isEmpty && index >= 0 && index < shape[0], "index \(index) outside \(shape)")
        let inner = Array(shape.dropFirst())
        return Tensor(data + index * inner.reduce(1, *), shape: inner)
    }

    /// A buffer pointer over all elements.
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
}

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

    /// A shaped view of the first `shape.reduce(1, *)` floats.
    public func tensor(_ shape: [Int]) -> Tensor {
        precondition(shape.reduce(1, *) <= count, "shape \(shape) exceeds scratch capacity \(count)")
        return Tensor(pointer, shape: shape)
    }
}
