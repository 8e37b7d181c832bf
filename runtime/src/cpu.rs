//! CPU features an artifact's kernels may need, and detecting them on this machine.

/// Feature names as LLVM spells them, each with this machine's answer.
pub fn known_features() -> Vec<(&'static str, bool)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        vec![
            ("sse4.2", has!("sse4.2")),
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("f16c", has!("f16c")),
            ("bmi2", has!("bmi2")),
            ("avx512f", has!("avx512f")),
            ("avx512bw", has!("avx512bw")),
            ("avx512dq", has!("avx512dq")),
            ("avx512vl", has!("avx512vl")),
            ("avx512cd", has!("avx512cd")),
            ("avx512vnni", has!("avx512vnni")),
            ("avx512bf16", has!("avx512bf16")),
            ("avx512fp16", has!("avx512fp16")),
            ("amx-tile", amx_in_cpuid()),
            ("amx-bf16", amx_in_cpuid()),
        ]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        vec![]
    }
}

/// Features kernels use only where `amx_granted`: an artifact built with them runs without them.
pub const OPTIONAL: &[&str] = &["amx-tile", "amx-bf16"];

/// The features among `needed` that this machine lacks (optional ones aside).
pub fn missing(needed: &[String]) -> Vec<String> {
    let known = known_features();
    needed
        .iter()
        .filter(|name| !OPTIONAL.contains(&name.as_str()) && !known.iter().any(|(k, present)| k == name && *present))
        .cloned()
        .collect()
}

/// Whether the CPU has AMX tiles with bf16 products (CPUID leaf 7: EDX bits 22 and 24).
/// (`is_x86_feature_detected!` does not know AMX on stable Rust.)
#[cfg(target_arch = "x86_64")]
fn amx_in_cpuid() -> bool {
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    leaf7.edx & (1 << 22) != 0 && leaf7.edx & (1 << 24) != 0
}

/// Whether kernels may use AMX tiles in this process: the CPU has them, `KILN_AMX=0` is not
/// set, and Linux granted the tile state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`;
/// without it the first tile instruction faults). Asked once.
pub fn amx_granted() -> bool {
    static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GRANTED.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: arch_prctl with these arguments only asks for permission; it touches no memory.
            amx_in_cpuid() && std::env::var("KILN_AMX").as_deref() != Ok("0") && unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) } == 0
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        false
    })
}
