//! `kiln info`: what an artifact holds and what one token costs.
use std::collections::BTreeMap;
use std::fmt::Write;

use runtime::artifact::Artifact;

pub fn describe(a: &Artifact) -> String {
    let m = &a.meta;
    let mut out = String::new();
    let params: usize = m.tensors.iter().filter(|t| !t.name.starts_with("kiln.")).map(|t| t.shape.iter().product::<usize>()).sum();
    let _ = writeln!(out, "architecture   {}", m.architecture);
    let _ = writeln!(out, "source         {}", m.source);
    let _ = writeln!(out, "parameters     {:.1} M", params as f64 / 1e6);
    let dims: Vec<String> = m.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(out, "dimensions     {}", dims.join(" "));
    let mut by_type: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for t in &m.tensors {
        let e = by_type.entry(format!("{} -> {}", t.source_dtype, t.dtype)).or_default();
        e.0 += 1;
        e.1 += t.bytes;
    }
    for (k, (n, bytes)) in by_type {
        let _ = writeln!(out, "weights        {n} tensors {k}, {:.1} MB", bytes as f64 / 1e6);
    }
    let weight_bytes: u64 = m.tensors.iter().filter(|t| !t.name.starts_with("kiln.")).map(|t| t.bytes).sum();
    let kv_per_token: usize = m.plan.caches.iter().map(|c| c.width * 4).sum();
    let _ = writeln!(out, "per token      {:.1} MB of weights read, {:.2} GFLOP decode", weight_bytes as f64 / 1e6, 2.0 * params as f64 / 1e9);
    let _ = writeln!(out, "kv cache       {} B per token, {:.1} MB at full context ({})", kv_per_token, (kv_per_token * m.plan.context) as f64 / 1e6, m.plan.context);
    let _ = writeln!(out, "target         {} [{}]", m.target_cpu, m.cpu_features.join(","));
    let mut kernels: Vec<&str> = m.plan.steps.iter().map(|s| s.kernel.as_str()).collect();
    kernels.sort();
    kernels.dedup();
    let _ = writeln!(out, "plan           {} steps, {} kernels, arena {:.1} MB, max {} tokens per pass", m.plan.steps.len(), kernels.len(), m.plan.arena_bytes as f64 / 1e6, m.plan.max_rows);
    let _ = writeln!(out, "fused groups   {}", m.fused_summary.len());
    out
}
