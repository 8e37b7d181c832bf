//! `kiln info`'s report (runtime::info) worked out from a model's fused graph, and the graph itself
//! for `--dot`.
pub mod dot;

use std::collections::BTreeMap;

use petgraph::graph::NodeIndex;
use petgraph::Direction;
pub use runtime::info::{AttentionCost, FusedSummary, Report, TensorGroup};

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

/// The report of a compiled graph; `kv`: how the KV cache stores values (the artifact's, or what
/// `kiln compile` would choose).
pub fn report(c: &Compiled, source: &str, kind: &str, tensors: &[Tensor], kv: KvDtype) -> Report {
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
                // matmuls on dot-product instructions read their packed copy
                let packed = crate::repack::packed_name(stored, crate::storage::row_range(g, n));
                let Some((stored, t)) = by_name.get_key_value(packed.as_str()).or_else(|| by_name.get_key_value(stored)) else { continue };
                let rows = t.shape.first().copied().unwrap_or(1).max(1) as u64;
                let whole = g.neighbors_directed(n, Direction::Outgoing).any(|c| !matches!(g[c].op, Op::Gather));
                let bytes = if whole { t.bytes } else { t.bytes / rows };
                let e = read.entry(stored).or_default();
                *e = (*e).max(bytes);
            }
            Op::Matmul => matmul_flops += 2 * numel(g, crate::unroll::operands(g, n)[1]),
            Op::Attention { heads, kv_heads, head_dim, window, .. } => attention.push(AttentionCost {
                flops_per_position: 4 * (*heads * *head_dim) as u64,
                kv_bytes_per_position: 2 * kv.row_bytes(*kv_heads * *head_dim) as u64,
                window: *window,
            }),
            Op::Input { .. } if g[n].shape.first() == Some(&Dim::Context) => kv_bytes += kv.row_bytes(width(g, n) as usize) as u64,
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
        // each weight once, packed copies aside
        parameters: tensors.iter().filter(|t| !(t.name.starts_with("kiln.") || t.name.ends_with("#x16") && by_name.contains_key(t.name.trim_end_matches("#x16")))).map(|t| t.shape.iter().product::<usize>() as u64).sum(),
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
        dot_matmuls: 0,
    }
}

/// The report an artifact stores: its tensors as written, its target and how many kernels.
pub fn artifact_report(c: &Compiled, source: &str, entries: &[runtime::artifact::TensorEntry], kv: KvDtype, target: String, kernels: &crate::lower::kernel::KernelSet) -> Report {
    let tensors: Vec<Tensor> = entries.iter().map(|t| Tensor { name: t.name.clone(), shape: t.shape.clone(), source_dtype: t.source_dtype.clone(), dtype: t.dtype.clone(), bytes: t.bytes }).collect();
    let dot_matmuls = kernels.specs.iter().filter(|s| matches!(s, crate::lower::kernel::KernelSpec::Matmul { dot: true, .. })).count();
    Report { target: Some(target), kernels: Some(kernels.specs.len()), dot_matmuls, ..report(c, source, "artifact", &tensors, kv) }
}

/// The report and fused graph of an artifact, or of a model (HF folder or GGUF) not compiled yet.
pub fn load(path: &std::path::Path) -> crate::Result<(Report, Compiled)> {
    if runtime::artifact::Artifact::is_artifact(path) {
        let meta = runtime::artifact::Artifact::open(path, false)?.meta;
        return Ok((meta.report, crate::compile::analyse(&meta.config)?));
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
            Tensor { name: name.clone(), shape: t.shape.clone(), source_dtype: t.dtype.clone(), dtype: format.name(), bytes: format.tensor_bytes(&t.shape) }
        })
        .collect();
    Ok((report(&c, &source.path, "model", &tensors, crate::compile::Options::default().kv), c))
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
