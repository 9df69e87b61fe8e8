// swift-tools-version: 6.1
// IndexMem: bounded-KV-cache LLM inference in Swift.

import PackageDescription

// Hot loops are written for SIMD; let the compiler use the AVX2/FMA/F16C units every
// machine this project runs on has (x86-64-v3). Other hosts keep the default target.
#if arch(x86_64)
let simdFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c", "-target-cpu", "haswell"])]
#else
let simdFlags: [SwiftSetting] = []
#endif

let package = Package(
    name: "IndexMem",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "IndexMem", targets: ["IndexMem"]),
        .executable(name: "indexmem", targets: ["indexmem"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(name: "IndexMemKernels", swiftSettings: simdFlags),
        .target(name: "IndexMemGGUF"),
        .target(name: "IndexMemTokenizer"),
        .target(name: "IndexMemCache", dependencies: ["IndexMemKernels"], swiftSettings: simdFlags),
        .target(
            name: "IndexMemModel",
            dependencies: ["IndexMemKernels", "IndexMemGGUF", "IndexMemTokenizer", "IndexMemCache"],
            swiftSettings: simdFlags),
        .target(name: "IndexMem", dependencies: ["IndexMemModel", "IndexMemCache"]),
        .target(name: "IndexMemEval", dependencies: ["IndexMem"]),
        .target(name: "IndexMemTestSupport", dependencies: ["IndexMemGGUF", "IndexMemKernels"]),
        .executableTarget(
            name: "indexmem",
            dependencies: ["IndexMem", "IndexMemEval", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "IndexMemKernelsTests", dependencies: ["IndexMemKernels"], swiftSettings: simdFlags),
        .testTarget(name: "IndexMemGGUFTests", dependencies: ["IndexMemGGUF", "IndexMemTestSupport"]),
        .testTarget(
            name: "IndexMemCacheTests", dependencies: ["IndexMemCache", "IndexMemKernels", "IndexMemTestSupport"],
            swiftSettings: simdFlags),
        .testTarget(
            name: "IndexMemTokenizerTests",
            dependencies: ["IndexMemTokenizer", "IndexMemGGUF", "IndexMemModel", "IndexMemTestSupport"]),
        .testTarget(name: "IndexMemEvalTests", dependencies: ["IndexMemEval", "IndexMem", "IndexMemTestSupport"]),
        .testTarget(
            name: "IndexMemModelTests",
            dependencies: ["IndexMem", "IndexMemModel", "IndexMemTestSupport"]),
    ]
)
