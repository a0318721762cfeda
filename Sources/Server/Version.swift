/// The release of this build, as `sputnik --version` prints it and `GET /version` returns it (vLLM's route:
/// `{"version": "…"}`). Semantic versioning; raised with each tagged release.
public enum SputnikVersion {
    /// `major.minor.patch`.
    public static let string = "0.1.0"
}
