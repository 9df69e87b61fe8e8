// IndexMem — GGUF reader tests. Apache-2.0.
//
// The ggml type table is written twice on purpose: the GGUF reader parses untrusted bytes and
// imports nothing of ours (so it can be fuzzed alone), and the kernels compute with the same
// types. This keeps the two tables equal.

import IndexMemGGUF
import IndexMemKernels
import Testing

@Suite("GGUF tensor types and kernel weight types")
struct TensorTypeTableTests {
    @Test("the same ggml types, numbers, block sizes and names in both tables")
    func tablesAgree() throws {
        #expect(Set(GGUFTensorType.allCases.map(\.rawValue)) == Set(WeightType.allCases.map(\.rawValue)))
        for t in GGUFTensorType.allCases {
            let w = try #require(WeightType(rawValue: t.rawValue), "\(t) has no weight type")
            #expect(w.blockElements == t.blockElements && w.blockBytes == t.blockBytes, "\(t)")
            #expect(w.description == t.description)
        }
    }
}
