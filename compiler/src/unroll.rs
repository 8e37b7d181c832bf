//! Graph JSON + bound config -> one concrete petgraph graph: layers unrolled, names resolved,
//! attributes bound, every node's shape checked against its op's shape rule.
use std::collections::HashMap;
use std::fmt;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde_json::Value;

use crate::bind::{eval_dim, Bound};
use crate::error::{Error, Result};
use crate::graph::{GraphJson, NodeJson};

/// A bound dimension: the pass's tokens (T), its logit rows (R), the KV context (S), or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Tokens,
    Logits,
    Context,
    Fixed(usize),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Dim::Tokens => write!(f, "T"),
            Dim::Logits => write!(f, "R"),
            Dim::Context => write!(f, "S"),
            Dim::Fixed(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Input { name: String },
    /// A tensor, or with `first_row` the rows first_row .. first_row + shape[0] of one.
    Weight { name: String, tied_to: Option<String>, first_row: Option<usize> },
    Gather,
    RmsNorm { eps: f32 },
    Add,
    Mul,
    Silu,
    /// x · factor
    Scale { factor: f32 },
    Matmul,
    Rope { head_dim: usize, theta: f64, scaling: Value },
    /// RMSNorm over each head's `head_dim` values, times a gain shared by the heads.
    HeadRmsNorm { eps: f32, head_dim: usize },
    KvWrite,
    /// With a window, query at position p sees cache rows p - window < row <= p.
    Attention { heads: usize, kv_heads: usize, head_dim: usize, scale: f32, window: Option<usize> },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Weight { .. } => "weight",
            Op::Gather => "gather",
            Op::RmsNorm { .. } => "rms_norm",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Silu => "silu",
            Op::Scale { .. } => "scale",
            Op::Matmul => "matmul",
            Op::Rope { .. } => "rope",
            Op::HeadRmsNorm { .. } => "head_rms_norm",
            Op::KvWrite => "kv_write",
            Op::Attention { .. } => "attention",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub shape: Vec<Dim>,
    pub layer: Option<usize>,
}

/// Edges run from operand to consumer; the weight is the operand's position.
pub type Graph = DiGraph<Node, usize>;

pub struct Unrolled {
    pub graph: Graph,
    pub logits: NodeIndex,
}

/// The operands of `n`, in order.
pub fn operands(g: &Graph, n: NodeIndex) -> Vec<NodeIndex> {
    let mut edges: Vec<_> = g.edges_directed(n, Direction::Incoming).map(|e| (*e.weight(), petgraph::visit::EdgeRef::source(&e))).collect();
    edges.sort();
    edges.into_iter().map(|(_, s)| s).collect()
}

struct Ctx<'a> {
    arch: &'a str,
    bound: &'a Bound,
    graph: Graph,
}

impl Ctx<'_> {
    fn err(&self, node: &NodeJson, detail: impl fmt::Display) -> Error {
        Error::Graph { arch: self.arch.into(), detail: format!("node {} ({}): {detail}", node.id, node.op) }
    }

    fn dim(&self, node: &NodeJson, expr: &str) -> Result<Dim> {
        Ok(match expr {
            "T" => Dim::Tokens,
            "R" => Dim::Logits,
            "S" => Dim::Context,
            _ => Dim::Fixed(eval_dim(expr, &self.bound.dims).map_err(|e| self.err(node, e))?),
        })
    }

    /// A numeric attribute: a literal, a dimension expression, or {"param": name}.
    fn number(&self, node: &NodeJson, key: &str) -> Result<Option<f64>> {
        let v = match node.attrs.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(o)) => self.param(node, o)?,
            Some(v) => v.clone(),
        };
        match v {
            Value::Number(n) => Ok(n.as_f64()),
            Value::String(s) => Ok(Some(eval_dim(&s, &self.bound.dims).map_err(|e| self.err(node, e))? as f64)),
            Value::Null => Ok(None),
            other => Err(self.err(node, format!("attribute '{key}' must be a number, got {other}"))),
        }
    }

    fn required(&self, node: &NodeJson, key: &str) -> Result<f64> {
        self.number(node, key)?.ok_or_else(|| self.err(node, format!("missing attribute '{key}'")))
    }

    fn param(&self, node: &NodeJson, o: &serde_json::Map<String, Value>) -> Result<Value> {
        let name = o.get("param").and_then(Value::as_str).ok_or_else(|| self.err(node, "attribute object without 'param'"))?;
        self.bound.params.get(name).cloned().ok_or_else(|| self.err(node, format!("unknown param '{name}'")))
    }

    fn add(&mut self, node: &NodeJson, layer: Option<usize>, ids: &HashMap<usize, NodeIndex>) -> Result<NodeIndex> {
        let name = |key: &str| -> Option<String> {
            let s = node.attrs.get(key)?.as_str()?;
            Some(match layer {
                Some(l) => s.replace("{layer}", &l.to_string()),
                None => s.to_string(),
            })
        };
        let op = match node.op.as_str() {
            "input" => Op::Input { name: name("name").ok_or_else(|| self.err(node, "input without a name"))? },
            "weight" => Op::Weight {
                name: name("name").ok_or_else(|| self.err(node, "weight without a name"))?,
                tied_to: name("tied_to"),
                first_row: self.number(node, "first_row")?.map(|r| r as usize),
            },
            "gather" => Op::Gather,
            "rms_norm" => Op::RmsNorm { eps: self.required(node, "eps")? as f32 },
            "add" => Op::Add,
            "mul" => Op::Mul,
            "silu" => Op::Silu,
            "scale" => {
                let divisor = self.number(node, "divisor")?.unwrap_or(1.0);
                if divisor == 0.0 {
                    return Err(self.err(node, "divisor 0"));
                }
                Op::Scale { factor: (self.number(node, "factor")?.unwrap_or(1.0) / divisor) as f32 }
            }
            "matmul" => Op::Matmul,
            "rope" => {
                let scaling = match node.attrs.get("scaling") {
                    Some(Value::Object(o)) => self.param(node, o)?,
                    other => other.cloned().unwrap_or(Value::Null),
                };
                Op::Rope { head_dim: self.required(node, "head_dim")? as usize, theta: self.required(node, "theta")?, scaling }
            }
            "kv_write" => Op::KvWrite,
            "head_rms_norm" => Op::HeadRmsNorm { eps: self.required(node, "eps")? as f32, head_dim: self.required(node, "head_dim")? as usize },
            "attention" => {
                let head_dim = self.required(node, "head_dim")? as usize;
                let scale = self.number(node, "scale")?.unwrap_or(1.0 / (head_dim as f64).sqrt()) as f32;
                let window = self.number(node, "window")?.map(|w| w as usize).filter(|&w| w > 0);
                Op::Attention { heads: self.required(node, "heads")? as usize, kv_heads: self.required(node, "kv_heads")? as usize, head_dim, scale, window }
            }
            other => return Err(self.err(node, format!("unknown op '{other}'"))),
        };
        let declared = node.shape.iter().map(|d| self.dim(node, d)).collect::<Result<Vec<_>>>()?;
        let inputs = node
            .inputs
            .iter()
            .map(|i| ids.get(i).copied().ok_or_else(|| self.err(node, format!("input {i} is not defined before it"))))
            .collect::<Result<Vec<_>>>()?;
        let shapes: Vec<&[Dim]> = inputs.iter().map(|&i| self.graph[i].shape.as_slice()).collect();
        if let Some(rule) = shape_rule(&op, &shapes).map_err(|e| self.err(node, e))? {
            if rule != declared {
                return Err(self.err(node, format!("shape {} does not match its inputs' {}", show(&declared), show(&rule))));
            }
        }
        let idx = self.graph.add_node(Node { op, shape: declared, layer });
        for (pos, &i) in inputs.iter().enumerate() {
            self.graph.add_edge(i, idx, pos);
        }
        Ok(idx)
    }
}

pub fn show(shape: &[Dim]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// The output shape each op's inputs imply (None for leaves, whose declared shape is taken).
fn shape_rule(op: &Op, s: &[&[Dim]]) -> std::result::Result<Option<Vec<Dim>>, String> {
    let want = |n: usize| if s.len() == n { Ok(()) } else { Err(format!("takes {n} inputs, got {}", s.len())) };
    let rank = |i: usize, r: usize| if s[i].len() == r { Ok(()) } else { Err(format!("input {i} must have rank {r}, has {}", show(s[i]))) };
    Ok(Some(match op {
        Op::Input { .. } | Op::Weight { .. } => return want(0).map(|_| None),
        Op::Gather => {
            want(2)?;
            rank(0, 2)?;
            rank(1, 1)?;
            vec![s[1][0], s[0][1]]
        }
        Op::RmsNorm { .. } | Op::Silu | Op::Scale { .. } => {
            want(1)?;
            rank(0, 2)?;
            s[0].to_vec()
        }
        Op::Add | Op::Mul => {
            want(2)?;
            rank(0, 2)?;
            if s[1] != s[0] && s[1] != &s[0][1..] {
                return Err(format!("cannot broadcast {} to {}", show(s[1]), show(s[0])));
            }
            s[0].to_vec()
        }
        Op::Matmul => {
            want(2)?;
            rank(0, 2)?;
            rank(1, 2)?;
            if s[0][1] != s[1][1] {
                return Err(format!("inner dimensions differ: {} · {}ᵀ", show(s[0]), show(s[1])));
            }
            vec![s[0][0], s[1][0]]
        }
        Op::Rope { head_dim, .. } => {
            want(2)?;
            rank(0, 2)?;
            let Dim::Fixed(w) = s[0][1] else { return Err("rope width must be fixed".into()) };
            if *head_dim == 0 || head_dim % 2 != 0 || w % head_dim != 0 || s[1] != &s[0][..1] {
                return Err(format!("rope over {} with head_dim {head_dim} and positions {}", show(s[0]), show(s[1])));
            }
            s[0].to_vec()
        }
        Op::HeadRmsNorm { head_dim, .. } => {
            want(2)?;
            rank(0, 2)?;
            let Dim::Fixed(w) = s[0][1] else { return Err("head_rms_norm width must be fixed".into()) };
            if *head_dim == 0 || w % head_dim != 0 || s[1] != [Dim::Fixed(*head_dim)] {
                return Err(format!("head_rms_norm of {} with a gain of {} and head_dim {head_dim}", show(s[0]), show(s[1])));
            }
            s[0].to_vec()
        }
        Op::KvWrite => {
            want(3)?;
            if s[0].len() != 2 || s[0][0] != Dim::Context || s[1].len() != 2 || s[1][1] != s[0][1] || s[2] != &s[1][..1] {
                return Err(format!("kv_write of {} into {}", show(s[1]), show(s[0])));
            }
            s[0].to_vec()
        }
        Op::Attention { heads, kv_heads, head_dim, .. } => {
            want(4)?;
            let width = |n: &usize| n.checked_mul(*head_dim).map(Dim::Fixed);
            let ok = s[0].len() == 2
                && Some(s[0][1]) == width(heads)
                && s[1] == s[2]
                && s[1].len() == 2
                && s[1][0] == Dim::Context
                && Some(s[1][1]) == width(kv_heads)
                && s[3] == &s[0][..1]
                && *kv_heads > 0
                && heads % kv_heads == 0;
            if !ok {
                return Err(format!("attention of q {} over caches {} with {heads}/{kv_heads} heads of {head_dim}", show(s[0]), show(s[1])));
            }
            s[0].to_vec()
        }
    }))
}

/// More layers than any real model has: a config asking for more is corrupt.
const MAX_LAYERS: usize = 1024;

pub fn unroll(json: &GraphJson, bound: &Bound) -> Result<Unrolled> {
    let mut ctx = Ctx { arch: &json.architecture, bound, graph: Graph::new() };
    let mut ids: HashMap<usize, NodeIndex> = HashMap::new();
    for node in &json.prologue {
        let idx = ctx.add(node, None, &ids)?;
        ids.insert(node.id, idx);
    }
    let count = eval_dim(&json.layer.count, &bound.dims).map_err(|e| Error::Graph { arch: json.architecture.clone(), detail: e })?;
    if count > MAX_LAYERS {
        return Err(Error::Config(format!("{count} layers; Kiln compiles at most {MAX_LAYERS}")));
    }
    let mut carry = *ids.get(&json.layer.carry_in).ok_or_else(|| Error::Graph { arch: json.architecture.clone(), detail: "carry_in is not a prologue node".into() })?;
    for layer in 0..count {
        let mut scope = ids.clone();
        scope.insert(json.layer.carry, carry);
        for node in json.layer.nodes.iter().filter(|n| n.id != json.layer.carry) {
            let idx = ctx.add(node, Some(layer), &scope)?;
            scope.insert(node.id, idx);
        }
        carry = *scope.get(&json.layer.carry_out).ok_or_else(|| Error::Graph { arch: json.architecture.clone(), detail: "carry_out is not a layer node".into() })?;
    }
    ids.insert(json.layer.carry_out, carry);
    for node in &json.epilogue {
        let idx = ctx.add(node, None, &ids)?;
        ids.insert(node.id, idx);
    }
    let logits = json
        .outputs
        .get("logits")
        .and_then(|id| ids.get(id))
        .copied()
        .ok_or_else(|| Error::Graph { arch: json.architecture.clone(), detail: "no 'logits' output".into() })?;
    Ok(Unrolled { graph: ctx.graph, logits })
}
