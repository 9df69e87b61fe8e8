// IndexMem — kernels. Apache-2.0. (stub, being written)
public enum Q5_K {
    @inlinable public static func dot(_ w: UnsafeRawPointer, _ a: UnsafeRawPointer, count: Int) -> Float { fatalError("Q5_K not implemented") }
    @inlinable public static func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) { fatalError("Q5_K not implemented") }
}
