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
        ]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        vec![]
    }
}

/// The features among `needed` that this machine lacks.
pub fn missing(needed: &[String]) -> Vec<String> {
    let known = known_features();
    needed
        .iter()
        .filter(|name| !known.iter().any(|(k, present)| k == name && *present))
        .cloned()
        .collect()
}
