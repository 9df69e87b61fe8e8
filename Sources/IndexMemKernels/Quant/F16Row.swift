// IndexMem — kernels. Apache-2.0. (stub, being written)
public enum F16Row {
    @inlinable public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float { fatalError("F16Row not implemented") }
    @inlinable public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) { fatalError("F16Row not implemented") }
}
