//! Quantising f32 rows into the block formats kernels read (`kiln compile --quant`, `kiln
//! convert`), bit for bit as ggml's reference quantisers (and the `gguf` package) do: Q8_0, Q4_0,
//! Q4_K, BF16 and F16 (and F32 as is); MLX's affine groups as `mx.quantize` does (mlx/affine.rs).
use half::f16;
use rayon::prelude::*;

use crate::lower::weight_format::WeightFormat;

/// The format `--quant quant` gives rows of `k`, if any: `quant` where they are whole blocks of
/// it; Q4_K's rows that are not whole super-blocks of 256 take Q5_0, as llama.cpp's do.
pub fn target_for(quant: WeightFormat, k: usize) -> Option<WeightFormat> {
    match quant {
        _ if quant.fits(k) => Some(quant),
        WeightFormat::Q4_K => Some(WeightFormat::Q5_0).filter(|q| q.fits(k)),
        _ => None,
    }
}

/// The formats `--quant` can make.
pub const TARGETS: [WeightFormat; 4] = [WeightFormat::Q8_0, WeightFormat::Q4_0, WeightFormat::Q4_K, WeightFormat::BF16];

/// `x` (whole rows of a multiple of 32 values) in `format`: one of TARGETS, F16, F32 or an MLX format.
pub fn quantize(format: WeightFormat, x: &[f32]) -> Vec<u8> {
    match format {
        WeightFormat::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        WeightFormat::F16 => x.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        WeightFormat::Affine(a) => a.quantize(x),
        WeightFormat::BF16 => x.iter().flat_map(|&v| bf16_bits(v).to_le_bytes()).collect(),
        WeightFormat::Q8_0 => x.chunks_exact(32).flat_map(q8_0).collect(),
        WeightFormat::Q4_0 => x.chunks_exact(32).flat_map(q4_0).collect(),
        WeightFormat::Q5_0 => x.chunks_exact(32).flat_map(q5_0).collect(),
        WeightFormat::Q4_K => x.par_chunks_exact(256).flat_map_iter(q4_k).collect(),
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

/// f16 d | u32 qh | u8 qs[16] (fifth bits in qh, nibbles as Q4_0's): d = (the value of largest
/// magnitude) / -16, q = min(31, trunc(x / d + 16.5))
fn q5_0(b: &[f32]) -> Vec<u8> {
    let max = b.iter().fold(0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
    let d = max / -16.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let q: Vec<u32> = b.iter().map(|&x| ((x * id + 16.5).trunc() as u32).min(31)).collect();
    let qh = q.iter().enumerate().fold(0u32, |h, (j, &v)| h | (v >> 4) << j);
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(qh.to_le_bytes());
    out.extend((0..16).map(|j| (q[j] & 15) as u8 | ((q[j + 16] & 15) as u8) << 4));
    out
}

/// ggml's nearest_int: round half to even through the float adder.
fn nearest_int(x: f32) -> i32 {
    ((x + 12582912.0).to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// Q4_K (layout in gguf/blocks.rs), as ggml's quantize_row_q4_K_ref: per sub-block of 32 a scale
/// and min fitted by weighted least squares over 21 candidate grids (weights av|x| + |x|), both
/// quantised to 6 bits against the super-block's largest, then the quants redone against them.
fn q4_k(x: &[f32]) -> Vec<u8> {
    let mut l = [0u8; 256];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let av_x = (xs.iter().fold(0f32, |s, v| s + v * v) / 32.0).sqrt();
        let weights: Vec<f32> = xs.iter().map(|v| av_x + v.abs()).collect();
        (scales[j], mins[j]) = fit_scale_min(xs, &weights, &mut l[32 * j..32 * j + 32]);
    }
    let (max_scale, max_min) = (scales.iter().fold(0f32, |m, &s| m.max(s)), mins.iter().fold(0f32, |m, &s| m.max(s)));
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut packed = [0u8; 12];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            (packed[j], packed[j + 4]) = (ls, lm);
        } else {
            packed[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    let (d, dmin) = (f16::from_f32(max_scale / 63.0), f16::from_f32(max_min / 63.0));
    for j in 0..8 {
        let (sc, m) = crate::gguf::blocks::scale_min_k4(j, &packed);
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * m as f32;
        for i in 0..32 {
            l[32 * j + i] = nearest_int((x[32 * j + i] + dm) / dj).clamp(0, 15) as u8;
        }
    }
    let mut out = [d.to_le_bytes(), dmin.to_le_bytes()].concat();
    out.extend(packed);
    for c in 0..4 {
        out.extend((0..32).map(|i| l[64 * c + i] | l[64 * c + 32 + i] << 4));
    }
    out
}

/// ggml's make_qkx2_quants(32, 15, x, weights, L, &min, Laux, -1, 0.1, 20, false): the (scale,
/// −min) of x ≈ scale·L + min with L in 0..=15, min ≤ 0, minimising Σ w·(scale·L + min − x)².
fn fit_scale_min(x: &[f32], w: &[f32], l: &mut [u8]) -> (f32, f32) {
    const NMAX: f32 = 15.0;
    let (mut min, mut max) = (x[0], x[0]);
    let (mut sum_w, mut sum_x) = (w[0], w[0] * x[0]);
    for i in 1..x.len() {
        min = min.min(x[i]);
        max = max.max(x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    min = min.min(0.0);
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let quant = |iscale: f32, x: f32, min: f32| nearest_int(iscale * (x - min)).clamp(0, NMAX as i32) as u8;
    let mut iscale = NMAX / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best = 0f32;
    for i in 0..x.len() {
        l[i] = quant(iscale, x[i], min);
        let diff = scale * l[i] as f32 + min - x[i];
        best += w[i] * (diff * diff);
    }
    let mut aux = [0u8; 32];
    for step in 0..=20 {
        iscale = (-1.0 + 0.1 * step as f32 + NMAX) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..x.len() {
            aux[i] = quant(iscale, x[i], min);
            let li = aux[i] as f32;
            sum_l += w[i] * li;
            sum_l2 += w[i] * li * li;
            sum_xl += w[i] * li * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut err = 0f32;
            for i in 0..x.len() {
                let diff = this_scale * aux[i] as f32 + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if err < best {
                l.copy_from_slice(&aux[..x.len()]);
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}
