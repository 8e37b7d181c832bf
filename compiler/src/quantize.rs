//! Quantising f32 rows into the block formats kernels read (`kiln compile --quant`, `kiln
//! convert`), bit for bit as ggml's reference quantisers (and the `gguf` package) do: Q8_0, Q4_0,
//! BF16 and F16 (and F32 as is); MLX's affine groups as `mx.quantize` does (mlx/affine.rs).
use half::f16;

use crate::lower::weight_format::WeightFormat;

/// The formats `--quant` can make.
pub const TARGETS: [WeightFormat; 3] = [WeightFormat::Q8_0, WeightFormat::Q4_0, WeightFormat::BF16];

/// `x` (whole rows of a multiple of 32 values) in `format`: one of TARGETS, F16, F32 or an MLX format.
pub fn quantize(format: WeightFormat, x: &[f32]) -> Vec<u8> {
    match format {
        WeightFormat::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        WeightFormat::F16 => x.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        WeightFormat::Affine(a) => a.quantize(x),
        WeightFormat::BF16 => x.iter().flat_map(|&v| bf16_bits(v).to_le_bytes()).collect(),
        WeightFormat::Q8_0 => x.chunks_exact(32).flat_map(q8_0).collect(),
        WeightFormat::Q4_0 => x.chunks_exact(32).flat_map(q4_0).collect(),
        other => unreachable!("{other:?} is not a --quant target"),
    }
}

/// f32 -> bf16, rounded to nearest even; NaN stays a quiet NaN.
fn bf16_bits(v: f32) -> u16 {
    let n = v.to_bits();
    if n & 0x7fff_ffff > 0x7f80_0000 {
        return ((n & 0xffff_0000) >> 16) as u16 | 64;
    }
    ((n as u64 + 0x7fff + ((n >> 16) & 1) as u64) >> 16) as u16
}

/// f16 d | i8 q[32]: d = max|x| / 127, q = round(x / d)
fn q8_0(b: &[f32]) -> Vec<u8> {
    let d = b.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(b.iter().map(|x| (x * id).round() as i8 as u8));
    out
}

/// f16 d | u8 qs[16] (element j in the low nibble of byte j, j + 16 in its high nibble):
/// d = (the value of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5))
fn q4_0(b: &[f32]) -> Vec<u8> {
    let max = b.iter().fold(0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
    let d = max / -8.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let q = |x: f32| ((x * id + 8.5).trunc() as u8).min(15);
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend((0..16).map(|j| q(b[j]) | q(b[j + 16]) << 4));
    out
}
