//! Fusion: groups the unrolled graph's nodes into kernels.
//!
//! 1. Elementwise chains (add, mul, silu, gelu_tanh, softcap, scale, rms_norm) fuse into one `Map` loop whenever a value
//!    has a single consumer.
//! 2. Epilogues: elementwise work on a matmul's result (bias, activation, gating, residual add)
//!    fuses into the matmul, applied to each output as it leaves the accumulator.
//! 3. Prologues: a `Map` feeding matmuls (the norm and its gain) fuses into every such matmul,
//!    which computes it on its input rows; the normalised activations are never written out.
use std::collections::HashMap;
use std::fmt::Write;

use petgraph::algo::toposort;
use petgraph::graph::NodeIndex;
use petgraph::Direction;

use crate::unroll::{operands, Graph, Op};

/// An elementwise expression at output position [t, j]. Leaves name values by `T`: graph
/// nodes here, argument slots once scheduled (`lower::kernel::KExpr`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr<T = NodeIndex> {
    /// value[t, j]
    Row(T),
    /// value[j], broadcast over rows
    Vector(T),
    /// value[t, j] · rsqrt(mean_j(value[t, :]²) + eps)
    Normed(T, f32),
    /// a matmul's dot product at [t, j]
    Acc,
    Add(Box<Expr<T>>, Box<Expr<T>>),
    Mul(Box<Expr<T>>, Box<Expr<T>>),
    Unary(Unary, Box<Expr<T>>),
}

/// Elementwise functions of one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// x · sigmoid(x)
    Silu,
    /// GELU, tanh approximation: x · sigmoid(2·sqrt(2/π)·(x + 0.044715·x³))
    GeluTanh,
    /// c · tanh(x / c)
    Softcap(f32),
    /// x · c
    Scale(f32),
}

impl Unary {
    /// How a fused listing shows it applied to `x`.
    pub fn show(self, x: &str) -> String {
        match self {
            Unary::Silu => format!("silu({x})"),
            Unary::GeluTanh => format!("gelu_tanh({x})"),
            Unary::Softcap(c) => format!("softcap({x}, {c})"),
            Unary::Scale(c) => format!("({x} · {c})"),
        }
    }
}

impl<T: Copy + PartialEq> Expr<T> {
    /// The same expression with every leaf renamed by `f`.
    pub fn relabel<U>(&self, f: &mut impl FnMut(T) -> U) -> Expr<U> {
        match self {
            Expr::Row(n) => Expr::Row(f(*n)),
            Expr::Vector(n) => Expr::Vector(f(*n)),
            Expr::Normed(n, eps) => Expr::Normed(f(*n), *eps),
            Expr::Acc => Expr::Acc,
            Expr::Add(a, b) => Expr::Add(Box::new(a.relabel(f)), Box::new(b.relabel(f))),
            Expr::Mul(a, b) => Expr::Mul(Box::new(a.relabel(f)), Box::new(b.relabel(f))),
            Expr::Unary(op, a) => Expr::Unary(*op, Box::new(a.relabel(f))),
        }
    }

    /// Every leaf, left to right.
    pub fn leaves(&self) -> Vec<&Expr<T>> {
        match self {
            Expr::Add(a, b) | Expr::Mul(a, b) => [a.leaves(), b.leaves()].concat(),
            Expr::Unary(_, a) => a.leaves(),
            leaf => vec![leaf],
        }
    }

    /// The values this expression reads by row (Row or Normed leaves).
    fn row_sources(&self) -> Vec<T> {
        self.leaves().into_iter().filter_map(|l| if let Expr::Row(n) | Expr::Normed(n, _) = l { Some(*n) } else { None }).collect()
    }

    /// The (single, if fusable) normalised source and its eps.
    pub fn normed(&self) -> Option<(T, f32)> {
        self.leaves().into_iter().find_map(|l| if let Expr::Normed(n, eps) = l { Some((*n, *eps)) } else { None })
    }

    fn normed_sources(&self) -> Vec<T> {
        let mut v: Vec<T> = vec![];
        for l in self.leaves() {
            if let Expr::Normed(n, _) = l {
                if !v.contains(n) {
                    v.push(*n);
                }
            }
        }
        v
    }

    /// Replaces the leaf `Row(node)` by `with`.
    fn substitute(&self, node: T, with: &Expr<T>) -> Expr<T> {
        match self {
            Expr::Row(n) if *n == node => with.clone(),
            Expr::Add(a, b) => Expr::Add(Box::new(a.substitute(node, with)), Box::new(b.substitute(node, with))),
            Expr::Mul(a, b) => Expr::Mul(Box::new(a.substitute(node, with)), Box::new(b.substitute(node, with))),
            Expr::Unary(op, a) => Expr::Unary(*op, Box::new(a.substitute(node, with))),
            leaf => leaf.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// out[t, j] = expr
    Map(Expr),
    /// out[t, n] = epilogue(acc = Σ_k input[t, k] · weight[n, k])
    Matmul { weight: NodeIndex, input: Expr, epilogue: Expr },
    /// gather, rope, kv_write or attention: the output node's own op
    Single,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub kind: Kind,
    /// The node whose value this group writes.
    pub output: NodeIndex,
    /// Every node computed inside it.
    pub nodes: Vec<NodeIndex>,
}

fn consumers(g: &Graph, n: NodeIndex) -> usize {
    g.edges_directed(n, Direction::Outgoing).count()
}

fn leaf(g: &Graph, n: NodeIndex) -> Expr {
    if g[n].shape.len() == 1 { Expr::Vector(n) } else { Expr::Row(n) }
}

/// Fuses the graph; the groups come back in an order that respects every dependency.
pub fn fuse(g: &Graph) -> Vec<Group> {
    let order = toposort(g, None).expect("graph JSON is acyclic by construction");
    let mut groups: Vec<Option<Group>> = vec![];
    let mut owner: HashMap<NodeIndex, usize> = HashMap::new();

    for n in order {
        let ops = operands(g, n);
        let expr = match &g[n].op {
            Op::Input { .. } | Op::Weight { .. } => continue,
            Op::Add => Expr::Add(Box::new(leaf(g, ops[0])), Box::new(leaf(g, ops[1]))),
            Op::Mul => Expr::Mul(Box::new(leaf(g, ops[0])), Box::new(leaf(g, ops[1]))),
            Op::Silu => Expr::Unary(Unary::Silu, Box::new(leaf(g, ops[0]))),
            Op::GeluTanh => Expr::Unary(Unary::GeluTanh, Box::new(leaf(g, ops[0]))),
            Op::Softcap { cap } => Expr::Unary(Unary::Softcap(*cap), Box::new(leaf(g, ops[0]))),
            Op::Scale { factor } => Expr::Unary(Unary::Scale(*factor), Box::new(leaf(g, ops[0]))),
            Op::RmsNorm { eps } => Expr::Normed(ops[0], *eps),
            Op::Matmul => {
                owner.insert(n, groups.len());
                groups.push(Some(Group { kind: Kind::Matmul { weight: ops[1], input: Expr::Row(ops[0]), epilogue: Expr::Acc }, output: n, nodes: vec![n] }));
                continue;
            }
            _ => {
                owner.insert(n, groups.len());
                groups.push(Some(Group { kind: Kind::Single, output: n, nodes: vec![n] }));
                continue;
            }
        };
        let (mut expr, mut nodes) = (expr, vec![n]);

        // 1. Inline single-consumer elementwise producers.
        for src in expr.row_sources() {
            let Some(&gi) = owner.get(&src) else { continue };
            let Some(Group { kind: Kind::Map(inner), .. }) = &groups[gi] else { continue };
            if consumers(g, src) != 1 || !expr.leaves().contains(&&Expr::Row(src)) {
                continue;
            }
            let merged = expr.substitute(src, inner);
            if merged.normed_sources().len() <= 1 {
                expr = merged;
                nodes.extend(groups[gi].take().unwrap().nodes);
            }
        }

        // 2. Become the epilogue of the latest single-consumer matmul it reads, if every other
        //    value it reads is ready by then.
        let latest = expr
            .row_sources()
            .into_iter()
            .filter(|s| consumers(g, *s) == 1 && expr.leaves().contains(&&Expr::Row(*s)))
            .filter_map(|s| owner.get(&s).map(|&gi| (gi, s)))
            .filter(|&(gi, _)| matches!(groups[gi], Some(Group { kind: Kind::Matmul { .. }, .. })))
            .max();
        if let Some((gi, src)) = latest {
            let ready = expr.row_sources().iter().all(|s| *s == src || owner.get(s).is_none_or(|&o| o < gi));
            if ready && expr.normed_sources().is_empty() {
                let group = groups[gi].as_mut().unwrap();
                if let Kind::Matmul { epilogue, .. } = &mut group.kind {
                    *epilogue = expr.substitute(src, epilogue);
                }
                group.output = n;
                group.nodes.extend(nodes);
                owner.insert(n, gi);
                continue;
            }
        }
        owner.insert(n, groups.len());
        groups.push(Some(Group { kind: Kind::Map(expr), output: n, nodes }));
    }

    // 3. Prologues: matmuls compute the Map that feeds them; a Map only matmuls read disappears.
    for gi in 0..groups.len() {
        let Some(Group { kind: Kind::Matmul { input: Expr::Row(x), .. }, .. }) = &groups[gi] else { continue };
        let x = *x;
        let Some(&pi) = owner.get(&x) else { continue };
        let Some(Group { kind: Kind::Map(prologue), nodes, .. }) = groups[pi].clone() else { continue };
        if let Some(Group { kind: Kind::Matmul { input, .. }, nodes: mine, .. }) = groups[gi].as_mut() {
            *input = prologue;
            mine.extend(nodes);
        }
        // every reader is a matmul taking x as its input, and each has absorbed the prologue by now
        let only_matmuls = g.neighbors_directed(x, Direction::Outgoing).all(|c| {
            g[c].op == Op::Matmul
                && operands(g, c)[0] == x
                && owner.get(&c).is_some_and(|&ci| matches!(&groups[ci], Some(Group { kind: Kind::Matmul { input, .. }, .. }) if *input != Expr::Row(x)))
        });
        if only_matmuls {
            groups[pi] = None;
        }
    }
    groups.into_iter().flatten().collect()
}

/// A readable listing of the groups, one per line: `%out = kind(...)`.
pub fn describe(g: &Graph, groups: &[Group]) -> String {
    let name = |n: NodeIndex| match &g[n].op {
        Op::Weight { name, first_row: Some(_), .. } => {
            let (a, b) = crate::storage::row_range(g, n).expect("a row range");
            format!("{name}[{a}..{b}]")
        }
        Op::Weight { name, offset: Some(o), .. } => format!("({name} + {o})"),
        Op::Weight { name, .. } | Op::Input { name } => name.clone(),
        _ => format!("%{}", n.index()),
    };
    let show = |e: &Expr| -> String {
        fn go(e: &Expr, name: &dyn Fn(NodeIndex) -> String) -> String {
            match e {
                Expr::Row(n) | Expr::Vector(n) => name(*n),
                Expr::Normed(n, eps) => format!("rms_norm({}, eps={eps:e})", name(*n)),
                Expr::Acc => "acc".into(),
                Expr::Add(a, b) => format!("({} + {})", go(a, name), go(b, name)),
                Expr::Mul(a, b) => format!("({} * {})", go(a, name), go(b, name)),
                Expr::Unary(op, a) => op.show(&go(a, name)),
            }
        }
        go(e, &name)
    };
    let mut out = String::new();
    for group in groups {
        let o = group.output;
        let shape = crate::unroll::show(&g[o].shape);
        let body = match &group.kind {
            Kind::Map(e) => format!("map {}", show(e)),
            Kind::Matmul { weight, input, epilogue } => {
                format!("matmul {} · {}ᵀ -> {}", show(input), name(*weight), show(epilogue))
            }
            Kind::Single => {
                let args: Vec<String> = operands(g, o).into_iter().map(name).collect();
                format!("{}({}{})", g[o].op.name(), args.join(", "), g[o].op.variant())
            }
        };
        let _ = writeln!(out, "{} {shape} = {body}   [{} ops]", name(o), group.nodes.len());
    }
    out
}
