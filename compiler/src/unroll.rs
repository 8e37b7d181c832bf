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
    /// A tensor, or with `first_row` the rows first_row .. first_row + shape[0] of one; plus
    /// `offset` where set (Gemma's norm gains are stored less 1).
    Weight { name: String, tied_to: Option<String>, first_row: Option<usize>, offset: Option<f32> },
    Gather,
    RmsNorm { eps: f32 },
    Add,
    Mul,
    Silu,
    /// GELU, tanh approximation
    GeluTanh,
    /// cap · tanh(x / cap)
    Softcap { cap: f32 },
    /// x · factor
    Scale { factor: f32 },
    Matmul,
    /// Rotates the first `rotary.dim` values of each head.
    Rope { head_dim: usize, rotary: Rotary },
    /// RMSNorm over each head's `head_dim` values, times a gain shared by the heads.
    HeadRmsNorm { eps: f32, head_dim: usize },
    KvWrite,
    /// With a window, query at position p sees cache rows p - window < row <= p; scores
    /// soft-capped to ±softcap where set.
    Attention { heads: usize, kv_heads: usize, head_dim: usize, scale: f32, window: Option<usize>, softcap: Option<f32> },
}

/// A rotary embedding's frequencies: over the first `dim` values of a head, base `theta`, the
/// config's rope scaling, and longrope's original context where the scaling does not give it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rotary {
    pub dim: usize,
    pub theta: f64,
    pub scaling: Value,
    pub original_context: Option<usize>,
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
            Op::GeluTanh => "gelu_tanh",
            Op::Softcap { .. } => "softcap",
            Op::Scale { .. } => "scale",
            Op::Matmul => "matmul",
            Op::Rope { .. } => "rope",
            Op::HeadRmsNorm { .. } => "head_rms_norm",
            Op::KvWrite => "kv_write",
            Op::Attention { .. } => "attention",
        }
    }
}

impl Op {
    /// The attributes that tell one layer's variant from another's (`; window 5, softcap 0.1`).
    pub fn variant(&self) -> String {
        let parts: Vec<String> = match self {
            Op::Rope { head_dim, rotary } => {
                let kind = rotary.scaling.get("rope_type").or_else(|| rotary.scaling.get("type")).and_then(Value::as_str).unwrap_or("default");
                let mut v = vec![format!("θ {}", rotary.theta)];
                v.extend((kind != "default").then(|| kind.to_string()));
                v.extend((rotary.dim != *head_dim).then(|| format!("{} of {head_dim} dims", rotary.dim)));
                v
            }
            Op::Attention { window, softcap, .. } => {
                window.map(|w| format!("window {w}")).into_iter().chain(softcap.map(|c| format!("softcap {c}"))).collect()
            }
            _ => vec![],
        };
        if parts.is_empty() { String::new() } else { format!("; {}", parts.join(", ")) }
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
    /// The layer being unrolled (None in the prologue and epilogue).
    layer: Option<usize>,
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

    /// A numeric attribute: a literal, a dimension expression, `{"param": name}` (this layer's
    /// value where it has one per layer), `{"pow": [a, e]}`, `{"mul": [a, b]}` or `{"first": [a, b]}`
    /// (a unless null); null if unset.
    fn number(&self, node: &NodeJson, key: &str) -> Result<Option<f64>> {
        self.eval(node, key, node.attrs.get(key).unwrap_or(&Value::Null), 0)
    }

    fn eval(&self, node: &NodeJson, key: &str, v: &Value, depth: usize) -> Result<Option<f64>> {
        let pair = |o: &Value| -> Result<Option<(f64, f64)>> {
            match o.as_array().map(Vec::as_slice) {
                Some([a, b]) if depth < 8 => Ok(self.eval(node, key, a, depth + 1)?.zip(self.eval(node, key, b, depth + 1)?)),
                _ => Err(self.err(node, format!("attribute '{key}': {o} is not a pair"))),
            }
        };
        Ok(match v {
            Value::Null => None,
            Value::Number(n) => n.as_f64(),
            Value::String(s) => Some(eval_dim(s, &self.bound.dims).map_err(|e| self.err(node, e))? as f64),
            Value::Object(o) if o.contains_key("param") => return self.eval(node, key, &self.param(node, o)?, depth + 1),
            Value::Object(o) if o.contains_key("pow") => pair(&o["pow"])?.map(|(a, e)| a.powf(e)),
            Value::Object(o) if o.contains_key("mul") => pair(&o["mul"])?.map(|(a, b)| a * b),
            Value::Object(o) if o.contains_key("first") => match o["first"].as_array().map(Vec::as_slice) {
                Some([a, b]) if depth < 8 => self.eval(node, key, a, depth + 1)?.map_or_else(|| self.eval(node, key, b, depth + 1), |x| Ok(Some(x)))?,
                _ => return Err(self.err(node, format!("attribute '{key}': {} is not a pair", o["first"]))),
            },
            other => return Err(self.err(node, format!("attribute '{key}' must be a number, got {other}"))),
        })
    }

    fn required(&self, node: &NodeJson, key: &str) -> Result<f64> {
        self.number(node, key)?.ok_or_else(|| self.err(node, format!("missing attribute '{key}'")))
    }

    /// `{"param": name}`: its bound value, this layer's where it has one per layer.
    fn param(&self, node: &NodeJson, o: &serde_json::Map<String, Value>) -> Result<Value> {
        let name = o.get("param").and_then(Value::as_str).ok_or_else(|| self.err(node, "attribute object without 'param'"))?;
        if let Some(values) = self.bound.layer_params.get(name) {
            let layer = self.layer.ok_or_else(|| self.err(node, format!("param '{name}' is per layer, read outside the layers")))?;
            return values.get(layer).cloned().ok_or_else(|| self.err(node, format!("param '{name}' has no value for layer {layer}")));
        }
        self.bound.params.get(name).cloned().ok_or_else(|| self.err(node, format!("unknown param '{name}'")))
    }

    /// A positive count attribute that must fit its use.
    fn count(&self, node: &NodeJson, key: &str) -> Result<Option<usize>> {
        match self.number(node, key)? {
            Some(x) if x.is_finite() && x >= 0.0 && x <= crate::bind::MAX_DIM as f64 => Ok(Some(x as usize)),
            Some(x) => Err(self.err(node, format!("attribute '{key}' = {x} is out of range"))),
            None => Ok(None),
        }
    }

    fn add(&mut self, node: &NodeJson, layer: Option<usize>, ids: &HashMap<usize, NodeIndex>) -> Result<NodeIndex> {
        self.layer = layer;
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
                first_row: self.count(node, "first_row")?,
                offset: self.number(node, "offset")?.map(|o| o as f32),
            },
            "gather" => Op::Gather,
            "rms_norm" => Op::RmsNorm { eps: self.required(node, "eps")? as f32 },
            "add" => Op::Add,
            "mul" => Op::Mul,
            "silu" => Op::Silu,
            "gelu_tanh" => Op::GeluTanh,
            "softcap" => match self.number(node, "cap")? {
                Some(cap) if cap > 0.0 => Op::Softcap { cap: cap as f32 },
                Some(cap) => return Err(self.err(node, format!("softcap {cap}"))),
                None => Op::Scale { factor: 1.0 }, // no cap: the identity, elided below
            },
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
                let head_dim = self.count(node, "head_dim")?.ok_or_else(|| self.err(node, "missing attribute 'head_dim'"))?;
                let dim = self.count(node, "rotary_dim")?.unwrap_or(head_dim);
                if dim == 0 || dim % 2 != 0 || dim > head_dim {
                    return Err(Error::Config(format!("rotary dimension {dim} of a {head_dim}-wide head (partial_rotary_factor?) must be even and fit the head")));
                }
                Op::Rope { head_dim, rotary: Rotary { dim, theta: self.required(node, "theta")?, scaling, original_context: self.count(node, "original_context")? } }
            }
            "kv_write" => Op::KvWrite,
            "head_rms_norm" => Op::HeadRmsNorm { eps: self.required(node, "eps")? as f32, head_dim: self.required(node, "head_dim")? as usize },
            "attention" => {
                let head_dim = self.required(node, "head_dim")? as usize;
                let scale = self.number(node, "scale")?.unwrap_or(1.0 / (head_dim as f64).sqrt()) as f32;
                let window = self.count(node, "window")?.filter(|&w| w > 0);
                let softcap = self.number(node, "softcap")?.map(|c| c as f32).filter(|&c| c > 0.0);
                Op::Attention { heads: self.required(node, "heads")? as usize, kv_heads: self.required(node, "kv_heads")? as usize, head_dim, scale, window, softcap }
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
        if op == (Op::Scale { factor: 1.0 }) {
            return Ok(inputs[0]); // the identity (a multiplier of 1, no soft-cap) is no node at all
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
        Op::RmsNorm { .. } | Op::Silu | Op::GeluTanh | Op::Softcap { .. } | Op::Scale { .. } => {
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
            if *head_dim == 0 || w % head_dim != 0 || s[1] != &s[0][..1] {
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
    let mut ctx = Ctx { arch: &json.architecture, bound, graph: Graph::new(), layer: None };
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
