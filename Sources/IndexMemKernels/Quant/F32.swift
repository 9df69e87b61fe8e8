// IndexMem — kernels. Apache-2.0.

// MARK: - F32 rows

public enum F32Row {
    @inlinable
    public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float {
        VectorMath.dot(w.assumingMemoryBound(to: Float.self), a.assumingMemoryBound(to: Float.self), count: count)
    }

    @inlinable
    public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        dst.update(from: src.assumingMemoryBound(to: Float.self), count: count)
    }
}
