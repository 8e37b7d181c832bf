//! `kiln info`'s report: what a model or artifact is and what one token costs it — parameters and
//! dtypes by tensor group, weight bytes read per token, FLOPs, KV-cache size, the fused kernels —
//! and a decode roofline for this machine's measured memory bandwidth. The compiler works it out
//! from the fused graph and stores it in each artifact, so a runtime-only build can print it.
pub mod bandwidth;

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TensorGroup {
    /// The tensor name with layer numbers as `*`.
    pub pattern: String,
    pub count: usize,
    pub source_dtype: String,
    pub dtype: String,
    pub parameters: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub architecture: String,
    pub source: String,
    /// "model" (not compiled yet) or "artifact"
    pub kind: String,
    pub dims: BTreeMap<String, usize>,
    pub parameters: u64,
    pub tensor_groups: Vec<TensorGroup>,
    /// Weight bytes one decode step reads: every matmul weight whole, one row of each gathered table.
    pub weight_bytes_per_token: u64,
    /// Matmul FLOPs per token (2·k·n each), the same in prefill and decode.
    pub matmul_flops_per_token: u64,
    /// Each attention op: what one token costs per position it attends (QKᵀ and PV FLOPs, K and
    /// V bytes read) and the window it attends within, if any.
    pub attention: Vec<AttentionCost>,
    /// KV-cache bytes stored per token.
    pub kv_bytes_per_token: u64,
    /// How the cache stores values: f32 or f16.
    pub kv_dtype: String,
    /// Layers grouped by what varies between them (window, soft-cap, rope), in layer order.
    pub layer_variants: Vec<(String, Vec<usize>)>,
    pub context: usize,
    pub fused: FusedSummary,
    /// Set when a target and plan exist (artifacts).
    pub target: Option<String>,
    pub kernels: Option<usize>,
    /// Of those, matmuls on 8-bit integer dot products (artifacts).
    #[serde(default)]
    pub dot_matmuls: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttentionCost {
    pub flops_per_position: u64,
    pub kv_bytes_per_position: u64,
    pub window: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FusedSummary {
    pub ops: usize,
    pub groups: usize,
    pub matmuls: usize,
    /// Groups of layer 0 and outside the layers, one line each: what they compute.
    pub lines: Vec<String>,
}

impl Report {
    /// Σ over attention ops of f(cost) × the positions a token at `pos` attends there.
    fn attended(&self, pos: usize, f: impl Fn(&AttentionCost) -> u64) -> u64 {
        self.attention.iter().map(|a| f(a) * a.window.map_or(pos + 1, |w| w.min(pos + 1)) as u64).sum()
    }

    /// FLOPs of one token at position `pos` (it attends to pos + 1 positions, or its window).
    pub fn flops_at(&self, pos: usize) -> u64 {
        self.matmul_flops_per_token + self.attended(pos, |a| a.flops_per_position)
    }

    /// Decode tokens/s if each step were bound by reading weights and KV cache at `bandwidth` B/s.
    pub fn roofline_decode(&self, bandwidth: f64, pos: usize) -> f64 {
        bandwidth / (self.weight_bytes_per_token + self.attended(pos, |a| a.kv_bytes_per_position)) as f64
    }

    /// The text `kiln info` prints; `bandwidth` is this machine's measured read bandwidth (B/s).
    pub fn text(&self, bandwidth: Option<f64>) -> String {
        let mut o = String::new();
        let last = self.context.saturating_sub(1);
        let _ = writeln!(o, "{} {}: {}", self.kind, self.source, self.architecture);
        let dims: Vec<String> = self.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(o, "dimensions   {}", dims.join(" "));
        let _ = writeln!(o, "parameters   {}", si(self.parameters as f64, ""));
        for (i, (variant, layers)) in self.layer_variants.iter().enumerate() {
            let _ = writeln!(o, "{:<12} {}: {variant}", if i == 0 { "layers" } else { "" }, ranges(layers));
        }
        let _ = writeln!(o, "\nweights (stored dtype <- source dtype)");
        let w = self.tensor_groups.iter().flat_map(|t| [t.dtype.len(), t.source_dtype.len()]).fold(5, usize::max);
        for t in &self.tensor_groups {
            let _ = writeln!(o, "  {:<48} ×{:<3} {:>w$} <- {:<w$} {:>9} params {:>9}", t.pattern, t.count, t.dtype, t.source_dtype, si(t.parameters as f64, ""), si(t.bytes as f64, "B"));
        }
        let _ = writeln!(o, "\nper token");
        let _ = writeln!(o, "  weights read      {} (matmul weights whole, one embedding row)", si(self.weight_bytes_per_token as f64, "B"));
        let _ = writeln!(o, "  decode FLOPs      {} at position 0, {} at position {last}", si(self.flops_at(0) as f64, "FLOP"), si(self.flops_at(last) as f64, "FLOP"));
        let prompt = self.context.min(512);
        let _ = writeln!(o, "  prefill FLOPs     {} per token for a {prompt}-token prompt", si(self.flops_at(prompt / 2) as f64, "FLOP"));
        let _ = writeln!(o, "  kv cache          {} per token ({}), {} at full context ({} tokens)", si(self.kv_bytes_per_token as f64, "B"), self.kv_dtype, si((self.kv_bytes_per_token * self.context as u64) as f64, "B"), self.context);
        if let Some(bw) = bandwidth {
            let _ = writeln!(o, "  decode roofline   {:.1} tok/s at position 0, {:.1} tok/s at position 1024 (reading weights and KV cache at {}/s)", self.roofline_decode(bw, 0), self.roofline_decode(bw, 1024), si(bw, "B"));
        }
        let _ = writeln!(o, "\nfused graph  {} ops -> {} kernels launched per pass ({} matmuls with fused prologue/epilogue)", self.fused.ops, self.fused.groups, self.fused.matmuls);
        if let (Some(t), Some(k)) = (&self.target, self.kernels) {
            let amx = if t.contains("amx-bf16") { "; bf16 AMX tiles for passes of 64 rows or more where granted" } else { "" };
            let dot = if self.dot_matmuls > 0 { format!(" ({} matmuls on packed weights and dot-product instructions{amx})", self.dot_matmuls) } else { String::new() };
            let _ = writeln!(o, "compiled     {k} distinct kernels for {t}{dot}");
        }
        let _ = writeln!(o, "layer 0 and outside the layers:");
        for l in &self.fused.lines {
            let _ = writeln!(o, "  {l}");
        }
        o
    }
}

/// `[0, 1, 2, 4]` -> `0-2, 4`
fn ranges(xs: &[usize]) -> String {
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    while i < xs.len() {
        let mut j = i;
        while j + 1 < xs.len() && xs[j + 1] == xs[j] + 1 {
            j += 1;
        }
        out.push(if j > i { format!("{}-{}", xs[i], xs[j]) } else { xs[i].to_string() });
        i = j + 1;
    }
    out.join(", ")
}

/// `1234567.0, "B"` -> `1.23 MB`
fn si(x: f64, unit: &str) -> String {
    let (scale, prefix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")].into_iter().find(|(s, _)| x >= *s).unwrap_or((1.0, ""));
    let digits = if scale == 1.0 { 0 } else { 2 };
    format!("{:.digits$} {prefix}{unit}", x / scale).trim_end().to_string()
}

