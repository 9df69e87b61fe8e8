// IndexMem — kernels. Apache-2.0.
//
// Instructions beyond the x86-64-v3 baseline the package is compiled for, found at run time
// so one binary runs everywhere and uses them where they exist.

import Foundation

public enum CPUFeatures {
    /// Whether the CPU has AVX-VNNI (the 256-bit `vpdpbusd`), read once from the kernel's
    /// CPU flags (Linux); false elsewhere.
    public static let hasAVXVNNI: Bool = {
        #if arch(x86_64) && os(Linux)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        return flags.split(separator: " ").contains("avx_vnni")
        #else
        return false
        #endif
    }()
}
