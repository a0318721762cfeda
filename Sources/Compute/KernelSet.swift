import CKernels
import Foundation

/// The SIMD kernel set the C kernels dispatch to: chosen once at load by CPUID (the highest of AVX2 + FMA + F16C,
/// those with the AVX-VNNI eight-row GEMMs, or with the AVX512-VNNI ones), capped by the environment variable
/// `SPUTNIK_KERNELS` (one of `names`) for side-by-side benchmarks.
public enum KernelSet {
    /// The sets by level (`ck_kernel_level`), as `SPUTNIK_KERNELS` names them.
    public static let names = ["reference", "avx2", "avxvnni", "avx512vnni"]

    /// The name of the set in use, e.g. "avx512vnni".
    public static var active: String { names[Int(ck_kernel_level())] }

    /// A warning when `SPUTNIK_KERNELS` is set to something that is not one of `names` (so no cap applies); nil
    /// otherwise.
    public static var unknownCapWarning: String? {
        guard let v = ProcessInfo.processInfo.environment["SPUTNIK_KERNELS"], !names.contains(v) else { return nil }
        return "SPUTNIK_KERNELS='\(v)' is not one of \(names.joined(separator: ", ")): no cap applied"
    }
}
