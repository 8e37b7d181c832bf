//! `kiln info --dot`: the fused graph as Graphviz, one box per kernel launch, edges for the values
//! passed between them; weights and inputs as plain labels.
use std::collections::HashMap;
use std::fmt::Write;

use crate::compile::Compiled;
use crate::fuse::Kind;
use crate::unroll::{operands, Op};

pub fn to_dot(c: &Compiled) -> String {
    let g = &c.graph;
    let group_of: HashMap<_, _> = c.groups.iter().enumerate().flat_map(|(i, grp)| grp.nodes.iter().map(move |&n| (n, i))).collect();
    let described = crate::fuse::describe(g, &c.groups);
    let mut o = String::from("digraph kiln {\n  rankdir=TB;\n  node [shape=box, fontname=monospace, fontsize=10];\n");
    for (i, (grp, line)) in c.groups.iter().zip(described.lines()).enumerate() {
        let color = match grp.kind {
            Kind::Matmul { .. } => "lightblue",
            Kind::Map(_) => "lightyellow",
            Kind::Single => "white",
        };
        let _ = writeln!(o, "  g{i} [label=\"{}\", style=filled, fillcolor={color}];", line.replace('\\', "\\\\").replace('"', "\\\""));
    }
    let mut edges = vec![];
    for (i, grp) in c.groups.iter().enumerate() {
        for &n in &grp.nodes {
            for src in operands(g, n) {
                match (&g[src].op, group_of.get(&src)) {
                    (Op::Input { name }, _) => edges.push(format!("  \"{name}\" -> g{i};")),
                    (_, Some(&j)) if j != i => edges.push(format!("  g{j} -> g{i};")),
                    _ => {}
                }
            }
        }
    }
    edges.sort();
    edges.dedup();
    for e in edges {
        let _ = writeln!(o, "{e}");
    }
    o.push_str("}\n");
    o
}
