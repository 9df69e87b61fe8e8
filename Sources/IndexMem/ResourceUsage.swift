// IndexMem — public facade. Apache-2.0.

import Foundation

// MARK: - Process memory

public enum ResourceUsage {
    /// Peak resident set size of this process in bytes (`VmHWM`), or 0 if unknown.
    public static func peakResidentBytes() -> Int { statusField("VmHWM:") }

    /// Current resident set size of this process in bytes (`VmRSS`), or 0 if unknown.
    public static func residentBytes() -> Int { statusField("VmRSS:") }

    private static func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let digits = line.dropFirst(name.count).trimmingCharacters(in: .whitespaces).split(separator: " ").first
            return (digits.flatMap { Int($0) } ?? 0) * 1024
        }
        return 0
    }
}
