// IndexMem — cache policies. Apache-2.0.
//
// The full cache: every entry is kept, no budget applies (llama.cpp's cache). Not a scorer:
// it resolves to no policy at all, and the facade makes full layer caches.

// MARK: - full

public enum FullPolicy {
    public static let definition = PolicyDefinition(
        name: "full", summary: "keep every entry (no budget)", keeps: "everything (the default; no budget)"
    ) { _ throws(PolicyError) in .full }
}
