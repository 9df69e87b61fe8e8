// swift-tools-version: 6.1
// IndexMem: bounded-KV-cache LLM inference in Swift.

import PackageDescription

// Hot loops are written for SIMD; let the compiler use the AVX2/FMA/F16C units every
// machine this project runs on has (x86-64-v3). Other hosts keep the default target.
#if arch(x86_64)
let simdFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c", "-target-cpu", "haswell"])]
// The AVX-VNNI kernels' module alone may use those instructions (x86-64-v3 plus AVX-VNNI,
// nothing else); it is called only after a run-time check (CPUFeatures.hasAVXVNNI).
let vnniFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c", "-Xcc", "-mavxvnni", "-target-cpu", "haswell"])]
#else
let simdFlags: [SwiftSetting] = []
let vnniFlags: [SwiftSetting] = []
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
        // No default traits: the server needs neither swift-configuration nor full Foundation.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // Hummingbird's own dependencies, named because the server imports them.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        .target(name: "IndexMemKernelsVNNI", swiftSettings: vnniFlags),
        .target(name: "IndexMemKernels", dependencies: ["IndexMemKernelsVNNI"], swiftSettings: simdFlags),
        .target(name: "IndexMemGGUF"),
        .target(name: "IndexMemTokenizer"),
        .target(name: "IndexMemSafetensors"),
        .target(name: "IndexMemCache", dependencies: ["IndexMemKernels"], swiftSettings: simdFlags),
        .target(
            name: "IndexMemModel",
            dependencies: ["IndexMemKernels", "IndexMemGGUF", "IndexMemTokenizer", "IndexMemCache"],
            swiftSettings: simdFlags),
        .target(
            name: "IndexMem",
            dependencies: ["IndexMemModel", "IndexMemCache", "IndexMemKernels", "IndexMemGGUF", "IndexMemTokenizer", "IndexMemSafetensors"]),
        .target(
            name: "IndexMemLearn", dependencies: ["IndexMem", "IndexMemModel", "IndexMemCache", "IndexMemKernels", "IndexMemSafetensors"],
            swiftSettings: simdFlags),
        .target(name: "IndexMemEval", dependencies: ["IndexMem", "IndexMemKernels"]),
        .target(name: "IndexMemTestSupport", dependencies: ["IndexMemGGUF", "IndexMemKernels"]),
        .target(
            name: "IndexMemServer",
            dependencies: [
                "IndexMem",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "indexmem",
            dependencies: ["IndexMem", "IndexMemEval", "IndexMemServer", "IndexMemLearn", "IndexMemGGUF", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "IndexMemKernelsTests", dependencies: ["IndexMemKernels"], swiftSettings: simdFlags),
        .testTarget(name: "ArchitectureTests", dependencies: ["IndexMem", "IndexMemTestSupport"]),
        .testTarget(name: "IndexMemSafetensorsTests", dependencies: ["IndexMemSafetensors", "IndexMemKernels"]),
        .testTarget(
            name: "IndexMemLearnTests",
            dependencies: ["IndexMemLearn", "IndexMem", "IndexMemKernels", "IndexMemSafetensors", "IndexMemTestSupport"]),
        .testTarget(name: "IndexMemGGUFTests", dependencies: ["IndexMemGGUF", "IndexMemKernels", "IndexMemTestSupport"]),
        .testTarget(
            name: "IndexMemCacheTests", dependencies: ["IndexMemCache", "IndexMemKernels", "IndexMemTestSupport"],
            swiftSettings: simdFlags),
        .testTarget(
            name: "IndexMemTokenizerTests",
            dependencies: ["IndexMemTokenizer", "IndexMemGGUF", "IndexMemModel", "IndexMemTestSupport"]),
        .testTarget(name: "IndexMemEvalTests", dependencies: ["IndexMemEval", "IndexMem", "IndexMemCache", "IndexMemTestSupport"]),
        .testTarget(
            name: "IndexMemServerTests",
            dependencies: ["IndexMemServer", "IndexMem", "IndexMemCache", "IndexMemTestSupport", .product(name: "Logging", package: "swift-log")],
            exclude: ["openai_client_test.py"]),
        .testTarget(
            name: "IndexMemModelTests",
            dependencies: ["IndexMem", "IndexMemModel", "IndexMemCache", "IndexMemTestSupport"]),
    ]
)
