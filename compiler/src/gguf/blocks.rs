//! GGUF tensor types Kiln reads, their block layouts, and dequantisation to f32.
use half::{bf16, f16};

/// (ggml type id, name, elements per block, bytes per block)
pub const TYPES: &[(u32, &str, usize, usize)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (8, "Q8_0", 32, 34),
    (30, "BF16", 1, 2),
];

/// Q4_0: f16 d | u8 qs[16]            x = (nibble - 8)·d; low nibbles are elements 0..16, high 16..32
pub const Q4_0_BYTES: usize = 2 + 16;
/// Q4_1: f16 d | f16 m | u8 qs[16]    x = nibble·d + m
pub const Q4_1_BYTES: usize = 2 + 2 + 16;
/// Q8_0: f16 d | i8 qs[32]            x = q·d
pub const Q8_0_BYTES: usize = 2 + 32;
const _: () = assert!(Q4_0_BYTES == 18 && Q4_1_BYTES == 20 && Q8_0_BYTES == 34);

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
            8 => {
                let d = half_at(b, 0);
                for (x, q) in o.iter_mut().zip(&b[2..]) {
                    *x = *q as i8 as f32 * d;
                }
            }
            _ => unreachable!(),
        }
    }
    out
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
