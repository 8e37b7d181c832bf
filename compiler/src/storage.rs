//! How each weight is stored in the artifact: in its source format (f16, bf16, the GGUF blocks
//! of lower/weight_format.rs, f32) when every kernel reading it can dequantise that format in registers — matmul
//! weights and gathered embedding tables — else converted to f32 (norm gains, formats kernels
//! do not read). `--weights f32` converts everything.
use std::collections::{BTreeMap, HashMap};

use petgraph::graph::NodeIndex;
use petgraph::Direction;

use crate::lower::weight_format::WeightFormat;
use crate::source::TensorInfo;
use crate::unroll::{operands, Dim, Graph, Op};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightMode {
    /// Keep each weight's source format where kernels read it.
    #[default]
    Native,
    /// Convert every weight to f32.
    F32,
}

/// The stored tensor a weight node reads: its own name, or the tensor it is tied to when the
/// model does not store it separately.
pub fn stored_name(g: &Graph, n: NodeIndex, infos: &BTreeMap<String, TensorInfo>) -> Option<String> {
    let Op::Weight { name, tied_to, .. } = &g[n].op else { return None };
    Some(match (infos.contains_key(name), tied_to) {
        (false, Some(t)) if infos.contains_key(t) => t.clone(),
        _ => name.clone(),
    })
}

/// The rows [a, b) of its stored tensor a weight node reads, when it is a row range of a fused one.
pub fn row_range(g: &Graph, n: NodeIndex) -> Option<(usize, usize)> {
    let Op::Weight { first_row: Some(r), .. } = &g[n].op else { return None };
    let rows = match g[n].shape.first() {
        Some(Dim::Fixed(rows)) => *rows,
        _ => 0,
    };
    Some((*r, r + rows))
}

/// The format of every stored tensor the graph reads; with `quant`, float tensors (f32, f16,
/// bf16) the kernels read directly are quantised to it where their rows are whole blocks.
pub fn formats(g: &Graph, infos: &BTreeMap<String, TensorInfo>, mode: WeightMode, quant: Option<WeightFormat>) -> HashMap<String, WeightFormat> {
    let mut out: HashMap<String, WeightFormat> = HashMap::new();
    for n in g.node_indices() {
        let Some(name) = stored_name(g, n, infos) else { continue };
        let Some(info) = infos.get(&name) else { continue };
        let k = match g[n].shape.last() {
            Some(Dim::Fixed(k)) => *k,
            _ => 0,
        };
        let read_directly = g[n].shape.len() == 2
            && matches!(g[n].op, Op::Weight { offset: None, .. })
            && g.neighbors_directed(n, Direction::Outgoing).all(|c| match g[c].op {
                Op::Matmul => operands(g, c)[1] == n,
                Op::Gather => operands(g, c)[0] == n,
                _ => false,
            });
        let native = WeightFormat::from_name(&info.dtype).filter(|f| mode == WeightMode::Native && read_directly && f.fits(k));
        let float = matches!(native, Some(WeightFormat::F32 | WeightFormat::F16 | WeightFormat::BF16));
        let quantised = quant.filter(|_| float).and_then(|q| crate::quantize::target_for(q, k));
        let format = quantised.or(native).unwrap_or(WeightFormat::F32);
        // a tensor read by several nodes (tied embeddings) is native only if all of them agree
        let e = out.entry(name).or_insert(format);
        if *e != format {
            *e = WeightFormat::F32;
        }
    }
    out
}
