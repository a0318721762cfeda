import CKernels

/// The SIMD kernel set the C kernels dispatch to: chosen once at load by CPUID (the highest of AVX2 + FMA + F16C,
/// those with the AVX-VNNI eight-row GEMMs, or with the AVX512-VNNI ones), capped by the environment variable
/// `SPUTNIK_KERNELS` (one of `names`) for side-by-side benchmarks. The names and the variable are read in C
/// (dispatch.c); this is their Swift face.
public enum KernelSet {
    /// The sets by level (`ck_kernel_level`), as `SPUTNIK_KERNELS` names them.
    public static let names = (Int32(0)...3).map { String(cString: ck_kernel_level_name($0)) }

    /// The name of the set in use, e.g. "avx512vnni".
    public static var active: String { names[Int(ck_kernel_level())] }

    /// A warning when `SPUTNIK_KERNELS` was set to something that is not one of `names` (so no cap applies); nil
    /// otherwise.
    public static var unknownCapWarning: String? {
        guard let v = ck_kernel_cap_ignored() else { return nil }
        return "SPUTNIK_KERNELS='\(String(cString: v))' is not one of \(names.joined(separator: ", ")): no cap applied"
    }
}
