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

pub fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Q4_x's 16 bytes of nibbles as 32 quants in element order (low nibbles first).
pub fn q4_quants(qs: &[u8]) -> [u8; 32] {
    std::array::from_fn(|e| if e < 16 { qs[e] & 0x0f } else { qs[e - 16] >> 4 })
}

/// Q5_x's quants: the nibbles with bit e of `qh` as element e's fifth bit.
pub fn q5_quants(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh[..4].try_into().unwrap());
    let low = q4_quants(qs);
    std::array::from_fn(|e| low[e] | (((qh >> e) & 1) as u8) << 4)
}

/// The (scale, min) of sub-block `j` of a Q4_K/Q5_K block: 6 bits each, packed in 12 bytes.
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Q4_K's (or, `fifth`, Q5_K's) 256 quants: sub-blocks 2i and 2i+1 share the bytes
/// qs[32i..32i+32] (low and high nibbles), and Q5_K's qh bits 2i and 2i+1.
pub fn k4_quants(b: &[u8], fifth: bool) -> [u8; 256] {
    let (qh, qs) = if fifth { (&b[16..48], &b[48..176]) } else { (&b[0..0], &b[16..144]) };
    std::array::from_fn(|i| {
        let (s, l) = (i / 32, i % 32);
        let byte = qs[32 * (s / 2) + l];
        let q = if s % 2 == 0 { byte & 0x0f } else { byte >> 4 };
        if fifth { q | ((qh[l] >> s) & 1) << 4 } else { q }
    })
}

/// Q6_K's 256 quants (0..64; x = d·sc[i / 16]·(q − 32)): two halves of 128; in each, element
/// 32k + l takes ql's nibble and qh's bit pair k.
pub fn q6_k_quants(b: &[u8]) -> [u8; 256] {
    let (ql, qh) = (&b[..128], &b[128..192]);
    std::array::from_fn(|i| {
        let (half, k, l) = (i / 128, i % 128 / 32, i % 32);
        let (ql, qh) = (&ql[64 * half..], &qh[32 * half..]);
        let low = (ql[l + 32 * (k % 2)] >> (4 * (k / 2))) & 0x0f;
        low | ((qh[l] >> (2 * k)) & 3) << 4
    })
}

/// Dequantises `bytes` of type `id` (already checked to hold whole blocks).
pub fn dequantize(id: u32, bytes: &[u8]) -> Vec<f32> {
    let (_, per_block, block_bytes) = type_info(id).expect("type checked when the file was opened");
    let mut out = vec![0f32; bytes.len() / block_bytes * per_block];
    for (b, o) in bytes.chunks_exact(block_bytes).zip(out.chunks_exact_mut(per_block)) {
        let fill = |o: &mut [f32], q: &[u8], f: &dyn Fn(usize, u8) -> f32| o.iter_mut().zip(q).enumerate().for_each(|(i, (x, &q))| *x = f(i, q));
        match id {
            0 => o[0] = f32::from_le_bytes(b.try_into().unwrap()),
            1 => o[0] = half_at(b, 0),
            30 => o[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            2 => fill(o, &q4_quants(&b[2..]), &|_, q| (q as f32 - 8.0) * half_at(b, 0)),
            3 => fill(o, &q4_quants(&b[4..]), &|_, q| q as f32 * half_at(b, 0) + half_at(b, 2)),
            6 => fill(o, &q5_quants(&b[2..], &b[6..]), &|_, q| (q as i32 - 16) as f32 * half_at(b, 0)),
            7 => fill(o, &q5_quants(&b[4..], &b[8..]), &|_, q| q as f32 * half_at(b, 0) + half_at(b, 2)),
            8 => fill(o, &b[2..], &|_, q| q as i8 as f32 * half_at(b, 0)),
            10 => q2_k(b, o),
            11 => q3_k(b, o),
            12 | 13 => {
                let (d, dmin) = (half_at(b, 0), half_at(b, 2));
                fill(o, &k4_quants(b, id == 13), &|i, q| {
                    let (sc, m) = scale_min_k4(i / 32, &b[4..16]);
                    d * sc as f32 * q as f32 - dmin * m as f32
                })
            }
            14 => fill(o, &q6_k_quants(b), &|i, q| half_at(b, 208) * b[192 + i / 16] as i8 as f32 * (q as i32 - 32) as f32),
            _ => unreachable!(),
        }
    }
    out
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
