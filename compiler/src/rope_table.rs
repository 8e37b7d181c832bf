//! The rope cos|sin tables the compiler writes into the artifact: [context, rotary dim], row p
//! holding cos(p·f_i) for the dim/2 inverse frequencies f_i, then sin(p·f_i), as transformers
//! computes them (f32), with linear, Llama-3 or longrope scaling.
use serde_json::Value;

use crate::error::{Error, Result};
use crate::unroll::Rotary;

/// Inverse frequencies of one position: longrope divides by its short factors below the original
/// context and by its long ones from there on (per position, so a position turns the same in any
/// pass; transformers switches a whole pass by its last position).
fn inverse_frequencies(r: &Rotary, long: bool) -> Result<Vec<f32>> {
    let half = r.dim / 2;
    let base = |i: usize| r.theta.powf((2 * i) as f64 / r.dim as f64) as f32;
    let mut inv: Vec<f32> = (0..half).map(|i| 1.0 / base(i)).collect();
    let get = |k: &str| r.scaling.get(k).and_then(Value::as_f64);
    let need = |kind: &str, k: &str| get(k).ok_or_else(|| Error::Config(format!("{kind} rope scaling without '{k}'")));
    if let Some(divisors) = r.scaling.get("freq_factors").and_then(Value::as_array) {
        // llama.cpp's rope_freqs tensor: the (Llama 3) scaling as a divisor per frequency
        let divisors: Vec<f32> = divisors.iter().filter_map(|v| v.as_f64().map(|f| f as f32)).collect();
        if divisors.len() != half {
            return Err(Error::Config(format!("rope freq_factors must list {half} numbers (half the rotary dimension)")));
        }
        return Ok(inv.iter().zip(divisors).map(|(x, d)| x / d).collect());
    }
    match kind(&r.scaling) {
        "default" => {}
        "linear" => {
            let f = need("linear", "factor")? as f32;
            inv.iter_mut().for_each(|x| *x /= f);
        }
        "llama3" => {
            let (factor, lo, hi, old) = (need("llama3", "factor")?, need("llama3", "low_freq_factor")?, need("llama3", "high_freq_factor")?, need("llama3", "original_max_position_embeddings")?);
            for x in inv.iter_mut() {
                let wavelen = 2.0 * std::f64::consts::PI / *x as f64;
                let scaled = if wavelen > old / lo { *x as f64 / factor } else { *x as f64 };
                *x = if wavelen < old / hi || wavelen > old / lo {
                    scaled as f32
                } else {
                    let smooth = (old / wavelen - lo) / (hi - lo);
                    ((1.0 - smooth) * scaled / factor + smooth * scaled) as f32
                };
            }
        }
        "longrope" | "su" => {
            let key = if long { "long_factor" } else { "short_factor" };
            let factors: Vec<f32> = r.scaling.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_f64().map(|f| f as f32)).collect()).unwrap_or_default();
            if factors.len() != half {
                return Err(Error::Config(format!("longrope '{key}' must list {half} numbers (half the rotary dimension)")));
            }
            inv = (0..half).map(|i| 1.0 / (factors[i] * base(i))).collect();
        }
        other => return Err(Error::Config(format!("unsupported rope_type '{other}'"))),
    }
    Ok(inv)
}

/// Llama 3 scaling as llama.cpp stores it (the rope_freqs tensor): each frequency's divisor.
pub fn freq_factors(dim: usize, theta: f64, scaling: &Value) -> Result<Vec<f32>> {
    let rotary = |scaling: Value| Rotary { dim, theta, scaling, original_context: None };
    let (plain, scaled) = (inverse_frequencies(&rotary(Value::Null), false)?, inverse_frequencies(&rotary(scaling.clone()), false)?);
    Ok(plain.iter().zip(scaled).map(|(p, s)| p / s).collect())
}

/// The rope type; longrope where factors are given without one (GGUF files).
fn kind(scaling: &Value) -> &str {
    let inferred = if scaling.get("long_factor").is_some() { "longrope" } else { "default" };
    scaling.get("rope_type").or_else(|| scaling.get("type")).and_then(Value::as_str).unwrap_or(inferred)
}

/// Longrope's original context (below it, the short factors), else None.
fn original_context(r: &Rotary) -> Result<Option<f64>> {
    if !matches!(kind(&r.scaling), "longrope" | "su") {
        return Ok(None);
    }
    let original = r.scaling.get("original_max_position_embeddings").and_then(Value::as_f64).or(r.original_context.map(|c| c as f64));
    original.filter(|&o| o >= 1.0).map(Some).ok_or_else(|| Error::Config("longrope rope scaling without 'original_max_position_embeddings'".into()))
}

/// How much longrope scales cos and sin: `attention_factor`, else sqrt(1 + ln s / ln original)
/// for a context stretched s = factor (or max context / original) times; 1 otherwise.
fn attention_factor(r: &Rotary, max_context: usize) -> Result<f32> {
    let Some(original) = original_context(r)? else { return Ok(1.0) };
    if let Some(f) = r.scaling.get("attention_factor").and_then(Value::as_f64) {
        return Ok(f as f32);
    }
    let s = r.scaling.get("factor").and_then(Value::as_f64).unwrap_or(max_context as f64 / original);
    Ok(if s <= 1.0 { 1.0 } else { (1.0 + s.ln() / original.ln()).sqrt() as f32 })
}

/// The table for positions 0..context, the model's context (longrope's stretch).
pub fn rope_table(r: &Rotary, context: usize) -> Result<Vec<f32>> {
    let (dim, half) = (r.dim, r.dim / 2);
    let (short, long) = (inverse_frequencies(r, false)?, inverse_frequencies(r, true)?);
    let switch = original_context(r)?.map_or(usize::MAX, |o| o as usize);
    let m = attention_factor(r, context)?;
    let mut table = vec![0f32; context * dim];
    for p in 0..context {
        let inv = if p >= switch { &long } else { &short };
        for (i, f) in inv.iter().enumerate() {
            let a = p as f32 * f;
            table[p * dim + i] = a.cos() * m;
            table[p * dim + half + i] = a.sin() * m;
        }
    }
    Ok(table)
}
