//! Binds a graph's symbolic dimensions and scalar parameters to a model's config.json.
use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{GraphJson, LayerKindsSpec, ParamSpec};

/// The largest dimension a config may give (2^24: past any real vocabulary, width or context).
pub const MAX_DIM: usize = 1 << 24;

pub struct Bound {
    pub dims: BTreeMap<String, usize>,
    pub params: BTreeMap<String, Value>,
    /// Parameters with a value per layer (by its kind).
    pub layer_params: BTreeMap<String, Vec<Value>>,
    /// Each layer's kind, where the graph has kinds.
    pub layer_kinds: Option<Vec<String>>,
}

/// The first of `keys` (dotted paths) present in the config.
fn lookup<'a>(config: &'a Value, keys: &[String]) -> Option<&'a Value> {
    keys.iter().find_map(|key| {
        let v = key.split('.').try_fold(config, |node, part| node.get(part))?;
        (!v.is_null()).then_some(v)
    })
}

/// A dimension expression: integers and symbols joined by `*`, `/` and `+`, left to right.
pub fn eval_dim(expr: &str, dims: &BTreeMap<String, usize>) -> std::result::Result<usize, String> {
    let mut value: Option<usize> = None;
    let mut op = '*';
    for tok in expr.split_whitespace().flat_map(split_ops) {
        if tok == "*" || tok == "/" || tok == "+" {
            op = tok.chars().next().unwrap();
            continue;
        }
        let v = match tok.parse::<usize>() {
            Ok(n) => n,
            Err(_) => *dims.get(tok).ok_or_else(|| format!("unknown dimension '{tok}'"))?,
        };
        value = Some(match (value, op) {
            (None, _) => v,
            (Some(a), '*') => a.checked_mul(v).filter(|&p| p <= MAX_DIM).ok_or_else(|| format!("'{expr}': {a} × {v} is too large"))?,
            (Some(a), '+') => a.checked_add(v).filter(|&p| p <= MAX_DIM).ok_or_else(|| format!("'{expr}': {a} + {v} is too large"))?,
            (Some(a), _) if v != 0 && a % v == 0 => a / v,
            (Some(a), _) => return Err(format!("'{expr}': {a} is not divisible by {v}")),
        });
    }
    value.ok_or_else(|| format!("empty dimension expression '{expr}'"))
}

fn split_ops(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '*' || c == '/' || c == '+' {
            if i > start {
                out.push(&s[start..i]);
            }
            out.push(&s[i..i + 1]);
            start = i + 1;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

pub fn bind(graph: &GraphJson, config: &Value) -> Result<Bound> {
    for (key, allowed) in &graph.supported {
        match lookup(config, std::slice::from_ref(key)) {
            Some(value) if !allowed.iter().any(|a| a == value || a.as_f64().is_some_and(|a| Some(a) == value.as_f64())) => {
                return Err(Error::Config(format!("'{key}' = {value} is not supported by Kiln's {} graph", graph.architecture)));
            }
            _ => {}
        }
    }
    let mut dims = BTreeMap::new();
    // Defaults may refer to other dims: resolve until nothing changes.
    let mut pending: Vec<&String> = graph.dims.keys().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut errors = vec![];
        pending.retain(|name| {
            let spec = &graph.dims[*name];
            let value = match lookup(config, &spec.config) {
                Some(v) => match v.as_u64() {
                    Some(n) if n > 0 && n <= MAX_DIM as u64 => Ok(n as usize),
                    _ => Err(format!("'{}' must be a positive integer up to {MAX_DIM}, got {v}", spec.config[0])),
                },
                None => match &spec.default {
                    Some(expr) => eval_dim(expr, &dims),
                    None => Err(format!("missing required field '{}'", spec.config.join("' or '"))),
                },
            };
            match value {
                Ok(v) => {
                    dims.insert((*name).clone(), v);
                    false
                }
                Err(e) => {
                    errors.push(e);
                    true
                }
            }
        });
        if pending.len() == before {
            return Err(Error::Config(errors.remove(0)));
        }
    }
    let layer_kinds = match &graph.layer_kinds {
        Some(spec) => Some(layer_kinds(spec, config, dims.get("layers").copied().unwrap_or(0))?),
        None => None,
    };
    let (mut params, mut layer_params) = (BTreeMap::new(), BTreeMap::new());
    for (name, spec) in &graph.params {
        match (&spec.by_layer_kind, &layer_kinds) {
            (None, _) => drop(params.insert(name.clone(), param(spec, config))),
            (Some(by_kind), Some(kinds)) => {
                let values = kinds.iter().map(|k| by_kind.get(k).map(|spec| param(spec, config)).ok_or_else(|| Error::Config(format!("param '{name}' has no value for layer kind '{k}'"))));
                layer_params.insert(name.clone(), values.collect::<Result<_>>()?);
            }
            (Some(_), None) => return Err(Error::Config(format!("param '{name}' is per layer kind, but the graph has no layer kinds"))),
        }
    }
    Ok(Bound { dims, params, layer_params, layer_kinds })
}

fn param(spec: &ParamSpec, config: &Value) -> Value {
    lookup(config, &spec.config).cloned().unwrap_or_else(|| spec.default.clone())
}

/// Each layer's kind: the config's list, else the spec's period pattern (as transformers fills
/// in `layer_types`).
fn layer_kinds(spec: &LayerKindsSpec, config: &Value, layers: usize) -> Result<Vec<String>> {
    let kinds: Vec<String> = match lookup(config, &spec.config) {
        Some(Value::Array(list)) => list.iter().map(|k| k.as_str().map(String::from).unwrap_or_else(|| k.to_string())).collect(),
        Some(other) => return Err(Error::Config(format!("'{}' must be a list of layer kinds, got {other}", spec.config[0]))),
        None if spec.kinds.len() != 2 => return Err(Error::Config(format!("a layer-kind period needs two kinds, the graph has {:?}", spec.kinds))),
        None => match param(&spec.period, config) {
            // a period: every period-th layer is kinds[1]; or (GGUF) a flag per layer, true for kinds[0]
            Value::Number(n) if n.as_u64().is_some_and(|p| p > 0) => {
                let period = n.as_u64().unwrap_or(1);
                (0..layers as u64).map(|i| spec.kinds[usize::from((i + 1) % period == 0)].clone()).collect()
            }
            Value::Array(flags) if flags.iter().all(Value::is_boolean) => flags.iter().map(|f| spec.kinds[usize::from(f != &Value::Bool(true))].clone()).collect(),
            other => return Err(Error::Config(format!("'{}' must be a positive integer, got {other}", spec.period.config.join("' or '")))),
        },
    };
    if let Some(unknown) = kinds.iter().find(|k| !spec.kinds.contains(k)) {
        return Err(Error::Config(format!("layer kind '{unknown}' is not supported (known: {})", spec.kinds.join(", "))));
    }
    if kinds.len() != layers {
        return Err(Error::Config(format!("'{}' lists {} layers, the model has {layers}", spec.config[0], kinds.len())));
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dim_expressions() {
        let dims = BTreeMap::from([("hidden".to_string(), 576), ("heads".to_string(), 9)]);
        assert_eq!(eval_dim("hidden / heads", &dims), Ok(64));
        assert_eq!(eval_dim("heads*64", &dims), Ok(576));
        assert_eq!(eval_dim("hidden + heads * 2", &dims), Ok(1170));
        assert!(eval_dim("hidden / 7", &dims).is_err());
        assert!(eval_dim("nope", &dims).is_err());
    }
}
