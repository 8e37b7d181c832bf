//! MLX-quantised Hugging Face folders (`mlx_lm.convert -q`, mlx-community/*-4bit, …):
//! config.json's `quantization` gives `group_size` and `bits` (and `mode`, affine only here),
//! with per-module overrides ({"group_size", "bits"}, or false for a module left in floats).
//! Each quantised module stores `weight` (u32, [out, in·bits/32]), `scales` and `biases`
//! ([out, in/group]); Kiln sees it as one weight [out, in] in an Affine format whose blocks
//! interleave the three.
pub mod affine;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::source::{TensorInfo, Weights};
use affine::{Affine, ScaleType};

struct Quantised {
    format: Affine,
    rows: usize,
}

struct MlxWeights {
    inner: Box<dyn Weights>,
    /// module weight name -> its format; the view's tensors (quantised ones as [out, in])
    quantised: BTreeMap<String, Quantised>,
    infos: BTreeMap<String, TensorInfo>,
}

impl Weights for MlxWeights {
    fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }

    fn read_raw(&self, name: &str) -> Result<Vec<u8>> {
        let Some(q) = self.quantised.get(name) else { return self.inner.read_raw(name) };
        let module = name.strip_suffix(".weight").expect("quantised names end in .weight");
        let (packed, scales, biases) = (self.inner.read_raw(name)?, self.inner.read_raw(&format!("{module}.scales"))?, self.inner.read_raw(&format!("{module}.biases"))?);
        let mut out = Vec::with_capacity(packed.len() + 2 * scales.len());
        let (p, s) = (packed.len() / q.rows, scales.len() / q.rows);
        for r in 0..q.rows {
            q.format.interleave(&packed[r * p..][..p], &scales[r * s..][..s], &biases[r * s..][..s], &mut out);
        }
        Ok(out)
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        match self.quantised.get(name) {
            Some(q) => Ok(q.format.dequantize(&self.read_raw(name)?)),
            None => self.inner.read_f32(name),
        }
    }
}

/// The folder's weights as Kiln reads them: unchanged without a `quantization` entry.
pub fn wrap(config: &Value, inner: Box<dyn Weights>) -> Result<Box<dyn Weights>> {
    let q = &config["quantization"];
    let packed: Vec<String> = inner.tensors().iter().filter(|(_, t)| t.dtype == "U32").map(|(n, _)| n.clone()).collect();
    if q.is_null() {
        return match packed.first() {
            Some(n) => Err(Error::Model(format!("tensor '{n}' is packed (U32) but config.json has no MLX `quantization` entry"))),
            None => Ok(inner),
        };
    }
    if let Some(mode) = q["mode"].as_str().filter(|m| *m != "affine") {
        return Err(Error::Config(format!("MLX quantization mode '{mode}' is not supported (Kiln reads affine)")));
    }
    let mut infos = inner.tensors().clone();
    let mut quantised = BTreeMap::new();
    for name in packed {
        let module = name.strip_suffix(".weight").ok_or_else(|| Error::Model(format!("tensor '{name}': packed (U32) but not a module's weight")))?;
        let params = match &q[module] {
            Value::Object(_) => &q[module],
            Value::Bool(false) => return Err(Error::Model(format!("tensor '{name}' is packed but config.json's quantization leaves {module} unquantised"))),
            _ => q,
        };
        let (scales, biases) = (format!("{module}.scales"), format!("{module}.biases"));
        let (Some(s), Some(b)) = (infos.remove(&scales), infos.remove(&biases)) else {
            return Err(Error::Model(format!("tensor '{name}': packed (U32) without {scales} and {biases}")));
        };
        let scale = ScaleType::ALL.into_iter().find(|t| t.name() == s.dtype && s.dtype == b.dtype);
        let bits = params["bits"].as_u64().unwrap_or(0);
        let group = params["group_size"].as_u64().unwrap_or(0);
        let format = scale
            .and_then(|scale| Affine::new(bits, group, scale))
            .ok_or_else(|| Error::Config(format!("{module}: MLX quantization of {bits} bits, group size {group}, scales {} is not supported (bits 2, 3, 4, 5, 6, 8; groups 32, 64, 128; scales f32/f16/bf16)", s.dtype)))?;
        let shape = &infos[&name].shape;
        let fits = shape.len() == 2 && s.shape.len() == 2 && s.shape == b.shape && s.shape[0] == shape[0] && shape[1] * 32 == s.shape[1] * group as usize * bits as usize;
        if !fits {
            return Err(Error::Model(format!("tensor '{name}': shape {shape:?} and scales {:?} do not match {bits}-bit groups of {group}", s.shape)));
        }
        let (rows, cols) = (shape[0], s.shape[1] * group as usize);
        infos.insert(name.clone(), TensorInfo { shape: vec![rows, cols], dtype: format.name() });
        quantised.insert(name, Quantised { format, rows });
    }
    Ok(Box::new(MlxWeights { inner, quantised, infos }))
}
