//! A fixture's weights re-encoded into another stored format (F16, BF16, Q8_0, Q4_0, Q4_1),
//! as a GGUF file would hold them, for tests of the kernels that read each format.
use std::collections::BTreeMap;
use std::path::Path;

use compiler::gguf::blocks::{dequantize, TYPES};
use compiler::source::{ModelSource, TensorInfo, Weights};
use half::{bf16, f16};

/// The fixture's weights, re-encoded as `dtype` where a row holds whole blocks.
pub struct Reencoded {
    infos: BTreeMap<String, TensorInfo>,
    raw: BTreeMap<String, Vec<u8>>,
}

/// (GGUF type id, name) of each format.
pub const FORMATS: [(u32, &str); 7] = [(1, "F16"), (30, "BF16"), (8, "Q8_0"), (2, "Q4_0"), (3, "Q4_1"), (6, "Q5_0"), (7, "Q5_1")];

fn encode(x: &[f32], name: &str) -> Vec<u8> {
    let half = |v: f32| f16::from_f32(v).to_le_bytes();
    let mut out = vec![];
    match name {
        "F16" => x.iter().for_each(|&v| out.extend(half(v))),
        "BF16" => x.iter().for_each(|&v| out.extend(bf16::from_f32(v).to_le_bytes())),
        _ => {
            for b in x.chunks(32) {
                let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                match name {
                    "Q8_0" => {
                        let d = amax / 127.0;
                        out.extend(half(d));
                        out.extend(b.iter().map(|v| if d == 0.0 { 0 } else { (v / d).round() as i8 as u8 }));
                    }
                    "Q4_0" => {
                        let d = amax / 7.0;
                        out.extend(half(d));
                        let q = |v: f32| if d == 0.0 { 8 } else { ((v / d).round() + 8.0).clamp(0.0, 15.0) as u8 };
                        out.extend((0..16).map(|i| q(b[i]) | (q(b[i + 16]) << 4)));
                    }
                    "Q5_0" | "Q5_1" => out.extend(q5(b, name == "Q5_1")),
                    _ => {
                        let min = b.iter().fold(f32::MAX, |m, &v| m.min(v));
                        let d = (b.iter().fold(f32::MIN, |m, &v| m.max(v)) - min) / 15.0;
                        out.extend(half(d));
                        out.extend(half(min));
                        let q = |v: f32| if d == 0.0 { 0 } else { ((v - min) / d).round().clamp(0.0, 15.0) as u8 };
                        out.extend((0..16).map(|i| q(b[i]) | (q(b[i + 16]) << 4)));
                    }
                }
            }
        }
    }
    out
}

/// A Q5_0 block (q = round(v/d) + 16) or a Q5_1 one (q = round((v - min)/d)): 5-bit q, its low
/// nibbles packed as in Q4, its fifth bits in a u32.
fn q5(b: &[f32], with_min: bool) -> Vec<u8> {
    let half = |v: f32| f16::from_f32(v).to_le_bytes();
    let (lo, hi) = (b.iter().fold(f32::MAX, |m, &v| m.min(v)), b.iter().fold(f32::MIN, |m, &v| m.max(v)));
    let amax = lo.abs().max(hi.abs());
    let (d, base) = if with_min { ((hi - lo) / 31.0, lo) } else { (amax / 15.0, 0.0) };
    let q: Vec<u32> = b.iter().map(|&v| if d == 0.0 { if with_min { 0 } else { 16 } } else { ((v - base) / d).round() as i32 + if with_min { 0 } else { 16 } }.clamp(0, 31) as u32).collect();
    let mut out = half(d).to_vec();
    if with_min {
        out.extend(half(base));
    }
    out.extend(q.iter().enumerate().fold(0u32, |qh, (i, q)| qh | (q >> 4) << i).to_le_bytes());
    out.extend((0..16).map(|i| (q[i] & 15) as u8 | ((q[i + 16] & 15) as u8) << 4));
    out
}

impl Reencoded {
    fn new(inner: &dyn Weights, dtype: &str) -> Reencoded {
        let (mut infos, mut raw) = (BTreeMap::new(), BTreeMap::new());
        for (name, info) in inner.tensors() {
            let x = inner.read_f32(name).unwrap();
            let blocked = dtype.starts_with('Q');
            let dtype = if blocked && (info.shape.len() != 2 || info.shape[1] % 32 != 0) { "F32" } else { dtype };
            let bytes = if dtype == "F32" { x.iter().flat_map(|v| v.to_le_bytes()).collect() } else { encode(&x, dtype) };
            infos.insert(name.clone(), TensorInfo { shape: info.shape.clone(), dtype: dtype.to_string() });
            raw.insert(name.clone(), bytes);
        }
        Reencoded { infos, raw }
    }
}

impl Weights for Reencoded {
    fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }
    fn read_f32(&self, name: &str) -> compiler::Result<Vec<f32>> {
        let id = TYPES.iter().find(|t| t.1 == self.infos[name].dtype).map_or(0, |t| t.0);
        Ok(dequantize(id, &self.raw[name]))
    }
    fn read_raw(&self, name: &str) -> compiler::Result<Vec<u8>> {
        Ok(self.raw[name].clone())
    }
}

/// Fixture `name` with its weights stored as `dtype` (one of FORMATS, or "F32").
pub fn reencoded(name: &str, dtype: &str) -> ModelSource {
    let mut source = compiler::load_model(&crate::fixture(name)).unwrap();
    source.weights = Box::new(Reencoded::new(source.weights.as_ref(), dtype));
    source
}

/// Compiles `source` into `out` with `options`.
pub fn compile_with(source: &ModelSource, out: &Path, options: &compiler::compile::Options) -> std::path::PathBuf {
    compiler::compile::compile(source, out, options, &mut |_| {}).unwrap();
    out.to_path_buf()
}

/// The tiny Llama widened to 256 (hidden, ffn, q and o: whole K-quant super-blocks) with every
/// matrix random blocks of `dtype` (a K-quant; finite scales) and unit norm gains.
pub fn random_k_quant(dtype: &str) -> ModelSource {
    let mut source = compiler::load_model(&crate::fixture("llama_tied_gqa")).unwrap();
    for (key, value) in [("hidden_size", 256), ("intermediate_size", 256), ("head_dim", 64)] {
        source.config[key] = value.into();
    }
    let (vocab, kv) = (source.config["vocab_size"].as_u64().unwrap() as usize, 2 * 64);
    let (id, per_block, block_bytes) = TYPES.iter().find(|t| t.1 == dtype).map(|t| (t.0, t.2, t.3)).unwrap();
    // where each format keeps its f16 scales
    let scales: &[usize] = match dtype {
        "Q2_K" => &[80, 82],
        "Q3_K" => &[108],
        "Q6_K" => &[208],
        _ => &[0, 2],
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ id as u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![vocab, 256]), ("model.norm.weight".into(), vec![256])];
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        for (name, shape) in [("self_attn.q_proj", vec![256, 256]), ("self_attn.k_proj", vec![kv, 256]), ("self_attn.v_proj", vec![kv, 256]), ("self_attn.o_proj", vec![256, 256]),
            ("mlp.gate_proj", vec![256, 256]), ("mlp.up_proj", vec![256, 256]), ("mlp.down_proj", vec![256, 256]), ("input_layernorm", vec![256]), ("post_attention_layernorm", vec![256])] {
            shapes.push((format!("{p}.{name}.weight"), shape));
        }
    }
    let (mut infos, mut raw) = (BTreeMap::new(), BTreeMap::new());
    for (name, shape) in shapes {
        let (dtype, bytes) = if shape.len() == 1 {
            ("F32", [1f32; 256].iter().flat_map(|v| v.to_le_bytes()).collect())
        } else {
            let mut bytes: Vec<u8> = (0..shape[0] * shape[1] / per_block * block_bytes).map(|_| next() as u8).collect();
            for block in bytes.chunks_mut(block_bytes) {
                for &at in scales {
                    let d = 0.0005 * (0.5 + (next() % 1000) as f32 / 1000.0);
                    block[at..at + 2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
                }
            }
            (dtype, bytes)
        };
        infos.insert(name.clone(), TensorInfo { shape, dtype: dtype.to_string() });
        raw.insert(name, bytes);
    }
    source.weights = Box::new(Reencoded { infos, raw });
    source
}
