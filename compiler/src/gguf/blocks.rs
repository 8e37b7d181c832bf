//! GGUF tensor types Kiln reads, their block layouts, and dequantisation to f32.
use half::{bf16, f16};

/// (ggml type id, name, elements per block, bytes per block)
pub const TYPES: &[(u32, &str, usize, usize)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (30, "BF16", 1, 2),
];

/// Q4_0: f16 d | u8 qs[16]            x = (nibble - 8)·d; low nibbles are elements 0..16, high 16..32
pub const Q4_0_BYTES: usize = 2 + 16;
/// Q4_1: f16 d | f16 m | u8 qs[16]    x = nibble·d + m
pub const Q4_1_BYTES: usize = 2 + 2 + 16;
/// Q8_0: f16 d | i8 qs[32]            x = q·d
pub const Q8_0_BYTES: usize = 2 + 32;
/// Q5_0: f16 d | u32 qh | u8 qs[16]    x = (nibble | high bit·16 - 16)·d; qh bit j is element j's
pub const Q5_0_BYTES: usize = 2 + 4 + 16;
/// Q5_1: f16 d | f16 m | u32 qh | u8 qs[16]    x = (nibble | high bit·16)·d + m
pub const Q5_1_BYTES: usize = 2 + 2 + 4 + 16;
const _: () = assert!(Q4_0_BYTES == 18 && Q4_1_BYTES == 20 && Q8_0_BYTES == 34 && Q5_0_BYTES == 22 && Q5_1_BYTES == 24);

// K-quants: super-blocks of 256 elements in sub-blocks of 16 or 32, each with its own scale (and
// min), the scales themselves quantised against the super-block's f16 d (and dmin).
/// Q2_K: u8 scales[16] (scale | min << 4) | u8 qs[64] (2 bits) | f16 d | f16 dmin    x = d·sc·q - dmin·m
pub const Q2_K_BYTES: usize = 16 + 64 + 2 + 2;
/// Q3_K: u8 hmask[32] (high bit) | u8 qs[64] (low 2 bits) | u8 scales[12] (16 × 6 bits) | f16 d    x = d·(sc - 32)·(q - 4·!high)
pub const Q3_K_BYTES: usize = 32 + 64 + 12 + 2;
/// Q4_K: f16 d | f16 dmin | u8 scales[12] (8 × 6-bit scale, min) | u8 qs[128]    x = d·sc·q - dmin·m
pub const Q4_K_BYTES: usize = 2 + 2 + 12 + 128;
/// Q5_K: f16 d | f16 dmin | u8 scales[12] | u8 qh[32] (fifth bits) | u8 qs[128]    x = d·sc·q - dmin·m
pub const Q5_K_BYTES: usize = 2 + 2 + 12 + 32 + 128;
/// Q6_K: u8 ql[128] (low 4 bits) | u8 qh[64] (high 2 bits) | i8 scales[16] | f16 d    x = d·sc·(q - 32)
pub const Q6_K_BYTES: usize = 128 + 64 + 16 + 2;
const _: () = assert!(Q2_K_BYTES == 84 && Q3_K_BYTES == 110 && Q4_K_BYTES == 144 && Q5_K_BYTES == 176 && Q6_K_BYTES == 210);

pub fn type_info(id: u32) -> Option<(&'static str, usize, usize)> {
    TYPES.iter().find(|t| t.0 == id).map(|t| (t.1, t.2, t.3))
}

fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

fn nibbles(qs: &[u8], out: &mut [f32], f: impl Fn(u8) -> f32) {
    for (i, q) in qs.iter().enumerate() {
        out[i] = f(q & 0x0f);
        out[i + 16] = f(q >> 4);
    }
}

/// Dequantises `bytes` of type `id` (already checked to hold whole blocks).
pub fn dequantize(id: u32, bytes: &[u8]) -> Vec<f32> {
    let (_, per_block, block_bytes) = type_info(id).expect("type checked when the file was opened");
    let mut out = vec![0f32; bytes.len() / block_bytes * per_block];
    for (b, o) in bytes.chunks_exact(block_bytes).zip(out.chunks_exact_mut(per_block)) {
        match id {
            0 => o[0] = f32::from_le_bytes(b.try_into().unwrap()),
            1 => o[0] = half_at(b, 0),
            30 => o[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            2 => {
                let d = half_at(b, 0);
                nibbles(&b[2..], o, |q| (q as f32 - 8.0) * d);
            }
            3 => {
                let (d, m) = (half_at(b, 0), half_at(b, 2));
                nibbles(&b[4..], o, |q| q as f32 * d + m);
            }
            6 | 7 => q5(b, o, id == 7),
            8 => {
                let d = half_at(b, 0);
                for (x, q) in o.iter_mut().zip(&b[2..]) {
                    *x = *q as i8 as f32 * d;
                }
            }
            10 => q2_k(b, o),
            11 => q3_k(b, o),
            12 | 13 => q4_k_q5_k(b, o, id == 13),
            14 => q6_k(b, o),
            _ => unreachable!(),
        }
    }
    out
}

/// Q5_0 (x = (q - 16)·d) or Q5_1 (x = q·d + m): a nibble plus a fifth bit from qh.
fn q5(b: &[u8], o: &mut [f32], with_min: bool) {
    let d = half_at(b, 0);
    let (m, at) = if with_min { (half_at(b, 2), 4) } else { (0.0, 2) };
    let value = |q: u32| if with_min { q as f32 * d + m } else { (q as i32 - 16) as f32 * d };
    let qh = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    for (j, q) in b[at + 4..at + 20].iter().enumerate() {
        o[j] = value((q & 0x0f) as u32 | ((qh >> j) & 1) << 4);
        o[j + 16] = value((q >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4);
    }
}

fn q2_k(b: &[u8], o: &mut [f32]) {
    let (scales, qs) = (&b[..16], &b[16..80]);
    let (d, dmin) = (half_at(b, 80), half_at(b, 82));
    // 16 sub-blocks of 16: sub-block s reads bits 2·(s / 2 % 4) of qs[32·(s / 8) + 16·(s % 2) ..][..16]
    for (s, sc) in scales.iter().enumerate() {
        let (dl, ml) = (d * (sc & 0x0f) as f32, dmin * (sc >> 4) as f32);
        let (q, shift) = (&qs[32 * (s / 8) + 16 * (s % 2)..][..16], 2 * (s / 2 % 4));
        for (l, q) in q.iter().enumerate() {
            o[16 * s + l] = dl * ((q >> shift) & 3) as f32 - ml;
        }
    }
}

fn q3_k(b: &[u8], o: &mut [f32]) {
    let (hmask, qs, packed, d) = (&b[..32], &b[32..96], &b[96..108], half_at(b, 108));
    // 16 six-bit scales: low 4 bits from packed[0..8] (nibbles), high 2 bits from packed[8..12]
    let scale = |s: usize| {
        let low = (packed[s % 8] >> (4 * (s / 8))) & 0x0f;
        let high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
        (low | high << 4) as i32 - 32
    };
    for s in 0..16 {
        let dl = d * scale(s) as f32;
        let (half, pair) = (s / 8, s % 8);
        let (shift, bit) = (2 * (pair / 2), 4 * half + pair / 2);
        for l in 0..16 {
            let i = 16 * (pair % 2) + l;
            let q = (qs[32 * half + i] >> shift) & 3;
            let high = (hmask[i] >> bit) & 1;
            o[16 * s + l] = dl * (q as i32 - if high == 1 { 0 } else { 4 }) as f32;
        }
    }
}

/// The (scale, min) of sub-block `j` of a Q4_K/Q5_K block: 6 bits each, packed in 12 bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Q4_K, or Q5_K (`fifth`): 8 sub-blocks of 32; sub-blocks 2i and 2i+1 share the bytes
/// qs[32i..32i+32] (low and high nibbles), and Q5_K's qh bits 2i and 2i+1.
fn q4_k_q5_k(b: &[u8], o: &mut [f32], fifth: bool) {
    let (d, dmin, scales) = (half_at(b, 0), half_at(b, 2), &b[4..16]);
    let (qh, qs) = if fifth { (&b[16..48], &b[48..176]) } else { (&b[0..0], &b[16..144]) };
    for s in 0..8 {
        let (sc, m) = scale_min_k4(s, scales);
        let (dl, ml) = (d * sc as f32, dmin * m as f32);
        for l in 0..32 {
            let byte = qs[32 * (s / 2) + l];
            let mut q = if s % 2 == 0 { byte & 0x0f } else { byte >> 4 };
            if fifth && (qh[l] >> s) & 1 == 1 {
                q += 16;
            }
            o[32 * s + l] = dl * q as f32 - ml;
        }
    }
}

fn q6_k(b: &[u8], o: &mut [f32]) {
    let (ql, qh, scales, d) = (&b[..128], &b[128..192], &b[192..208], half_at(b, 208));
    // two halves of 128; in each, element 32k + l takes ql's nibble and qh's bit pair k
    for half in 0..2 {
        let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &scales[8 * half..]);
        for l in 0..32 {
            let q = [
                (ql[l] & 0x0f) | (qh[l] & 3) << 4,
                (ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4,
                (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4,
                (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4,
            ];
            for (k, q) in q.into_iter().enumerate() {
                o[128 * half + 32 * k + l] = d * sc[l / 16 + 2 * k] as i8 as f32 * (q as i32 - 32) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_and_q8_0_blocks() {
        let mut b = vec![];
        b.extend(f16::from_f32(0.5).to_le_bytes());
        b.extend(f16::from_f32(-1.0).to_le_bytes());
        b.extend((0..16u8).map(|i| i | ((15 - i) << 4)));
        let x = dequantize(3, &b);
        assert_eq!(x[0], -1.0);
        assert_eq!(x[3], 3.0 * 0.5 - 1.0);
        assert_eq!(x[16], 15.0 * 0.5 - 1.0);

        let mut b = f16::from_f32(0.25).to_le_bytes().to_vec();
        b.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let x = dequantize(8, &b);
        assert_eq!(x[0], -4.0);
        assert_eq!(x[31], 15.0 * 0.25);

        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend([0x1fu8; 16]);
        let x = dequantize(2, &b);
        assert_eq!((x[0], x[16]), (14.0, -14.0));
    }
}
