//! Scheduling: each fused group becomes one plan step — a kernel spec (interned, so that
//! identical layers share code) plus the values it reads and writes, in slot order.
use petgraph::graph::NodeIndex;
use runtime::plan::{Input, KvDtype, Rows, Work};

use crate::fuse::{Expr, Group, Kind};
use crate::lower::kernel::{AttentionSpec, KExpr, KernelSet, KernelSpec};
use crate::lower::weight_format::WeightFormat;
use crate::unroll::{operands, Dim, Graph, Op, Rotary};

/// A step argument before buffers are placed: a graph value, or a table the compiler makes.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgRef {
    Node(NodeIndex),
    /// The rope cos|sin table of these frequencies.
    RopeTable(Rotary),
    /// An input the runtime fills that the graph does not name (each row's cache base).
    Input(Input),
    /// A weight repacked for the integer kernels (repack.rs).
    Packed(NodeIndex),
    /// Zeroed memory of this many bytes that a kernel leaves zeroed again, shared by every step
    /// asking for the same size (lower/attention.rs's partial results and counters).
    Workspace(u64),
}

pub struct Scheduled {
    pub kernel: String,
    pub args: Vec<ArgRef>,
    pub rows: Rows,
    pub work: Work,
    pub label: String,
    /// The value this step writes (its last argument, or the cache for kv_write).
    pub output: NodeIndex,
}

fn fixed(d: Dim) -> usize {
    match d {
        Dim::Fixed(n) => n,
        other => panic!("expected a fixed dimension, got {other}"),
    }
}

fn rows_of(d: Dim) -> Rows {
    if d == Dim::Logits { Rows::Logits } else { Rows::Tokens }
}

/// Assigns argument slots to an expression's leaves (first appearance order, from `first`).
fn slots(e: &Expr, args: &mut Vec<ArgRef>, first: usize) -> KExpr {
    e.relabel(&mut |n| {
        let a = ArgRef::Node(n);
        first + args.iter().position(|x| *x == a).unwrap_or_else(|| {
            args.push(a);
            args.len() - 1
        })
    })
}

fn label(g: &Graph, group: &Group) -> String {
    let layer = g[group.output].layer.map(|l| format!("layer {l}: ")).unwrap_or_default();
    let mut ops: Vec<&str> = group.nodes.iter().map(|&n| g[n].op.name()).collect();
    ops.sort();
    ops.dedup();
    let weight = match &group.kind {
        Kind::Matmul { weight, .. } => match &g[*weight].op {
            Op::Weight { name, .. } => format!(" {}", name.rsplit('.').nth(1).unwrap_or(name)),
            _ => String::new(),
        },
        _ => String::new(),
    };
    format!("{layer}{}{weight} ({})", g[group.output].op.name(), ops.join("+"))
}

/// `format_of` gives the stored format of a weight node (activations are f32); `kv` the cache's;
/// `dot(format, k)` whether a matmul runs on dot-product instructions over its packed weight.
pub fn schedule(g: &Graph, groups: &[Group], kernels: &mut KernelSet, format_of: &dyn Fn(NodeIndex) -> WeightFormat, kv: KvDtype, dot: &dyn Fn(WeightFormat, usize) -> bool) -> Vec<Scheduled> {
    groups
        .iter()
        .map(|group| {
            let o = group.output;
            let shape = &g[o].shape;
            let (spec, args, rows, work) = match &group.kind {
                Kind::Map(e) => {
                    let mut args = vec![];
                    let expr = slots(e, &mut args, 0);
                    let inputs = args.len();
                    args.push(ArgRef::Node(o));
                    (KernelSpec::Map { width: fixed(shape[1]), inputs, expr }, args, rows_of(shape[0]), Work::Rows)
                }
                Kind::Matmul { weight, input, epilogue } => {
                    let mut leaves = vec![];
                    let input = slots(input, &mut leaves, 1);
                    let epilogue = slots(epilogue, &mut leaves, 1);
                    let (n, k) = (fixed(g[*weight].shape[0]), fixed(g[*weight].shape[1]));
                    let inputs = leaves.len();
                    let format = format_of(*weight);
                    let dot = dot(format, k);
                    let mut args = vec![if dot { ArgRef::Packed(*weight) } else { ArgRef::Node(*weight) }];
                    args.extend(leaves);
                    args.push(ArgRef::Node(o));
                    (KernelSpec::Matmul { k, n, inputs, input, epilogue, format, dot }, args, rows_of(shape[0]), Work::Columns(n))
                }
                Kind::Single => {
                    let ops = operands(g, o);
                    let mut args: Vec<ArgRef> = ops.iter().map(|&n| ArgRef::Node(n)).collect();
                    let (spec, work) = match &g[o].op {
                        Op::Gather => (KernelSpec::Gather { width: fixed(shape[1]), format: format_of(ops[0]) }, Work::Rows),
                        Op::KvWrite => (KernelSpec::KvWrite { width: fixed(shape[1]), dtype: kv }, Work::Rows),
                        Op::Rope { head_dim, rotary } => {
                            args.push(ArgRef::RopeTable(rotary.clone()));
                            (KernelSpec::Rope { width: fixed(shape[1]), head_dim: *head_dim, rotary_dim: rotary.dim }, Work::Rows)
                        }
                        Op::HeadRmsNorm { eps, head_dim } => (KernelSpec::HeadRmsNorm { width: fixed(shape[1]), head_dim: *head_dim, eps: *eps }, Work::Rows),
                        Op::Attention { heads, kv_heads, head_dim, scale, window, softcap } => (
                            KernelSpec::Attention(AttentionSpec { heads: *heads, kv_heads: *kv_heads, head_dim: *head_dim, scale: *scale, window: *window, softcap: *softcap, kv }),
                            Work::HeadRows(*kv_heads),
                        ),
                        other => panic!("op {} cannot stand alone", other.name()),
                    };
                    if matches!(g[o].op, Op::KvWrite | Op::Attention { .. }) {
                        args.push(ArgRef::Input(Input::CacheBase));
                    }
                    if !matches!(g[o].op, Op::KvWrite) {
                        args.push(ArgRef::Node(o));
                    }
                    if let KernelSpec::Attention(a) = &spec {
                        args.push(ArgRef::Workspace(crate::lower::attention::workspace_bytes(a) as u64));
                    }
                    // kv_write's output is the cache: its rows are those of the values written
                    let rows = if matches!(g[o].op, Op::KvWrite) { g[ops[1]].shape[0] } else { shape[0] };
                    (spec, args, rows_of(rows), work)
                }
            };
            Scheduled { kernel: kernels.intern(spec), args, rows, work, label: label(g, group), output: o }
        })
        .collect()
}

