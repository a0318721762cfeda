import Foundation

/// Locates test fixtures committed under `Tests/Fixtures` and models downloaded under `models/`.
public enum Fixtures {
    /// `Tests/Fixtures` of this checkout.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The repository root.
    public static let repoRoot: URL = root.deletingLastPathComponent().deletingLastPathComponent()

    /// A path below `Tests/Fixtures`.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// The path of a real model under `models/` (override the folder with `SPUTNIK_MODELS_DIR`), or nil when the
    /// file is absent; callers print a visible skip message in that case.
    public static func model(_ file: String) -> String? {
        let dir = ProcessInfo.processInfo.environment["SPUTNIK_MODELS_DIR"] ?? repoRoot.appendingPathComponent("models").path
        let p = (dir as NSString).appendingPathComponent(file)
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    /// Reads a raw little-endian float32 file (the fixtures' `*.f32` convention).
    public static func floats(_ relative: String) throws -> [Float] {
        let d = try Data(contentsOf: root.appendingPathComponent(relative))
        return d.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }
}
