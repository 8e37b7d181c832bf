//! `kiln info`: what a model or artifact is and what one token costs it, worked out from its
//! fused graph: parameters and dtypes by tensor group, weight bytes read per token, FLOPs, KV-cache
//! size, the fused kernels, and a decode roofline for a memory bandwidth.
pub mod bandwidth;
pub mod dot;

use std::collections::BTreeMap;
use std::fmt::Write;

use petgraph::graph::NodeIndex;
use petgraph::Direction;
use serde::Serialize;

use runtime::plan::KvDtype;

use crate::compile::Compiled;
use crate::fuse::Kind;
use crate::unroll::{Dim, Graph, Op};

/// One stored tensor: its name, shape, dtype where it came from and in the artifact, bytes stored.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub source_dtype: String,
    pub dtype: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct TensorGroup {
    /// The tensor name with layer numbers as `*`.
    pub pattern: String,
    pub count: usize,
    pub source_dtype: String,
    pub dtype: String,
    pub parameters: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
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
}

#[derive(Debug, Serialize)]
pub struct AttentionCost {
    pub flops_per_position: u64,
    pub kv_bytes_per_position: u64,
    pub window: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct FusedSummary {
    pub ops: usize,
    pub groups: usize,
    pub matmuls: usize,
    /// Groups of layer 0 and outside the layers, one line each: what they compute.
    pub lines: Vec<String>,
}

impl Report {
    /// `kv`: how the KV cache stores values (the artifact's, or what `kiln compile` would choose).
    pub fn new(c: &Compiled, source: &str, kind: &str, tensors: &[Tensor], kv: KvDtype) -> Report {
        let g = &c.graph;
        let by_name: BTreeMap<&str, &Tensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut groups: BTreeMap<(String, String, String), TensorGroup> = BTreeMap::new();
        for t in tensors.iter().filter(|t| !t.name.starts_with("kiln.")) {
            let pattern = layer_pattern(&t.name);
            let e = groups.entry((pattern.clone(), t.source_dtype.clone(), t.dtype.clone())).or_insert(TensorGroup {
                pattern,
                count: 0,
                source_dtype: t.source_dtype.clone(),
                dtype: t.dtype.clone(),
                parameters: 0,
                bytes: 0,
            });
            e.count += 1;
            e.parameters += t.shape.iter().product::<usize>() as u64;
            e.bytes += t.bytes;
        }

        // Bytes read per token: per stored tensor, the most any reader reads.
        let mut read: BTreeMap<&str, u64> = BTreeMap::new();
        let (mut matmul_flops, mut attention, mut kv_bytes) = (0u64, vec![], 0u64);
        let mut variants: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for n in g.node_indices() {
            match &g[n].op {
                Op::Weight { name, tied_to, .. } => {
                    let stored = tied_to.as_deref().unwrap_or(name);
                    let Some(t) = by_name.get(stored) else { continue };
                    let rows = t.shape.first().copied().unwrap_or(1).max(1) as u64;
                    let whole = g.neighbors_directed(n, Direction::Outgoing).any(|c| !matches!(g[c].op, Op::Gather));
                    let bytes = if whole { t.bytes } else { t.bytes / rows };
                    let e = read.entry(stored).or_default();
                    *e = (*e).max(bytes);
                }
                Op::Matmul => matmul_flops += 2 * numel(g, crate::unroll::operands(g, n)[1]),
                Op::Attention { heads, kv_heads, head_dim, window, .. } => attention.push(AttentionCost {
                    flops_per_position: 4 * (*heads * *head_dim) as u64,
                    kv_bytes_per_position: 2 * (kv.bytes() * *kv_heads * *head_dim) as u64,
                    window: *window,
                }),
                Op::Input { .. } if g[n].shape.first() == Some(&Dim::Context) => kv_bytes += width(g, n) * kv.bytes() as u64,
                _ => {}
            }
            if let (Some(l), Op::Attention { .. } | Op::Rope { .. }) = (g[n].layer, &g[n].op) {
                let detail = g[n].op.variant();
                let v = if detail.is_empty() { g[n].op.name().to_string() } else { format!("{} ({})", g[n].op.name(), detail.trim_start_matches("; ")) };
                let list = variants.entry(l).or_default();
                if !list.contains(&v) {
                    list.push(v);
                }
            }
        }
        let mut layer_variants: Vec<(String, Vec<usize>)> = vec![];
        for (l, mut v) in variants {
            v.sort();
            let key = v.join(", ");
            match layer_variants.iter_mut().find(|(k, _)| *k == key) {
                Some((_, layers)) => layers.push(l),
                None => layer_variants.push((key, vec![l])),
            }
        }
        let layer0 = |n: NodeIndex| g[n].layer.is_none_or(|l| l == 0);
        let described = crate::fuse::describe(g, &c.groups);
        let lines = c.groups.iter().zip(described.lines()).filter(|(grp, _)| layer0(grp.output)).map(|(_, l)| l.to_string()).collect();
        Report {
            architecture: c.arch.clone(),
            source: source.to_string(),
            kind: kind.to_string(),
            dims: c.dims.clone(),
            parameters: tensors.iter().filter(|t| !t.name.starts_with("kiln.")).map(|t| t.shape.iter().product::<usize>() as u64).sum(),
            tensor_groups: groups.into_values().collect(),
            weight_bytes_per_token: read.values().sum(),
            matmul_flops_per_token: matmul_flops,
            attention,
            kv_bytes_per_token: kv_bytes,
            kv_dtype: format!("{kv:?}").to_lowercase(),
            layer_variants,
            context: c.dims.get("max_context").copied().unwrap_or(0),
            fused: FusedSummary {
                ops: g.node_indices().filter(|&n| !matches!(g[n].op, Op::Weight { .. } | Op::Input { .. })).count(),
                groups: c.groups.len(),
                matmuls: c.groups.iter().filter(|grp| matches!(grp.kind, Kind::Matmul { .. })).count(),
                lines,
            },
            target: None,
            kernels: None,
        }
    }

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
        for t in &self.tensor_groups {
            let _ = writeln!(o, "  {:<48} ×{:<3} {:>5} <- {:<5} {:>9} params {:>9}", t.pattern, t.count, t.dtype, t.source_dtype, si(t.parameters as f64, ""), si(t.bytes as f64, "B"));
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
            let _ = writeln!(o, "compiled     {k} distinct kernels for {t}");
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

/// The report and fused graph of an artifact, or of a model (HF folder or GGUF) not compiled yet.
pub fn load(path: &std::path::Path) -> crate::Result<(Report, Compiled)> {
    if runtime::artifact::Artifact::is_artifact(path) {
        let a = runtime::artifact::Artifact::open(path, false)?;
        let m = &a.meta;
        let c = crate::compile::analyse(&m.config)?;
        let tensors: Vec<Tensor> = m.tensors.iter().map(|t| Tensor { name: t.name.clone(), shape: t.shape.clone(), source_dtype: t.source_dtype.clone(), dtype: t.dtype.clone(), bytes: t.bytes }).collect();
        let kv = m.plan.caches.first().map_or(KvDtype::default(), |c| c.dtype);
        let mut report = Report::new(&c, &m.source, "artifact", &tensors, kv);
        let mut kernels: Vec<&str> = m.plan.steps.iter().map(|s| s.kernel.as_str()).collect();
        kernels.sort();
        kernels.dedup();
        report.target = Some(format!("{} [{}]", m.target_cpu, m.cpu_features.join(",")));
        report.kernels = Some(kernels.len());
        return Ok((report, c));
    }
    let source = crate::load_model(path)?;
    let c = crate::compile::analyse(&source.config)?;
    // as `kiln compile` would store them
    let formats = crate::storage::formats(&c.graph, source.weights.tensors(), Default::default(), None);
    let tensors: Vec<Tensor> = source
        .weights
        .tensors()
        .iter()
        .map(|(name, t)| {
            let format = formats.get(name).copied().unwrap_or(crate::lower::weight_format::WeightFormat::F32);
            Tensor { name: name.clone(), shape: t.shape.clone(), source_dtype: t.dtype.clone(), dtype: format.name().into(), bytes: format.tensor_bytes(&t.shape) }
        })
        .collect();
    Ok((Report::new(&c, &source.path, "model", &tensors, crate::compile::Options::default().kv), c))
}

/// `model.layers.12.mlp.up_proj.weight` -> `model.layers.*.mlp.up_proj.weight`
fn layer_pattern(name: &str) -> String {
    name.split('.').map(|part| if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) { "*" } else { part }).collect::<Vec<_>>().join(".")
}

/// Elements of a node with fixed dimensions (a weight).
fn numel(g: &Graph, n: NodeIndex) -> u64 {
    g[n].shape.iter().map(|d| if let Dim::Fixed(k) = d { *k as u64 } else { 1 }).product()
}

/// The last (fixed) dimension of `n`.
fn width(g: &Graph, n: NodeIndex) -> u64 {
    match g[n].shape.last() {
        Some(Dim::Fixed(k)) => *k as u64,
        _ => 0,
    }
}
