//! MLX's affine quantisation: per group of `group` elements (32, 64 or 128) a scale and a bias
//! and `bits`-bit values (2, 3, 4, 5, 6 or 8) packed as one little-endian bit stream (element i
//! at bits i·bits .. of the row; MLX stores the stream as u32 words): x = scale·q + bias.
//! MLX keeps three tensors (`weight` u32, `scales`, `biases`); Kiln interleaves them at compile
//! time into one block per group, so a kernel reads one stream:
//! Block: scale | bias (f32, f16 or bf16, as the folder stores them) | q[group] packed
use half::{bf16, f16};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleType {
    F32,
    F16,
    BF16,
}

impl ScaleType {
    pub const ALL: [ScaleType; 3] = [ScaleType::F32, ScaleType::F16, ScaleType::BF16];

    pub fn name(self) -> &'static str {
        match self {
            ScaleType::F32 => "F32",
            ScaleType::F16 => "F16",
            ScaleType::BF16 => "BF16",
        }
    }

    pub fn bytes(self) -> usize {
        if self == ScaleType::F32 { 4 } else { 2 }
    }

    /// x rounded to this type (to nearest even), as little-endian bytes.
    pub fn write(self, x: f32) -> Vec<u8> {
        match self {
            ScaleType::F32 => x.to_le_bytes().to_vec(),
            ScaleType::F16 => f16::from_f32(x).to_le_bytes().to_vec(),
            ScaleType::BF16 => bf16::from_f32(x).to_le_bytes().to_vec(),
        }
    }

    pub fn read(self, b: &[u8]) -> f32 {
        match self {
            ScaleType::F32 => f32::from_le_bytes(b[..4].try_into().unwrap()),
            ScaleType::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
            ScaleType::BF16 => bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Affine {
    pub bits: u8,
    pub group: u16,
    pub scale: ScaleType,
}

impl Affine {
    pub const BITS: [u8; 6] = [2, 3, 4, 5, 6, 8];
    pub const GROUPS: [u16; 3] = [32, 64, 128];

    /// The format, if Kiln reads these bits and group size.
    pub fn new(bits: u64, group: u64, scale: ScaleType) -> Option<Affine> {
        let ok = bits <= 8 && group <= 128 && Self::BITS.contains(&(bits as u8)) && Self::GROUPS.contains(&(group as u16));
        ok.then_some(Affine { bits: bits as u8, group: group as u16, scale })
    }

    /// "MLX4g64-BF16": bits, group size, type of scale and bias.
    pub fn name(self) -> String {
        format!("MLX{}g{}-{}", self.bits, self.group, self.scale.name())
    }

    pub fn parse(name: &str) -> Option<Affine> {
        let (bits, rest) = name.strip_prefix("MLX")?.split_once('g')?;
        let (group, scale) = rest.split_once('-')?;
        let scale = *ScaleType::ALL.iter().find(|s| s.name() == scale)?;
        Affine::new(bits.parse().ok()?, group.parse().ok()?, scale)
    }

    /// Bytes of the packed values of one group.
    pub fn packed_bytes(self) -> usize {
        self.group as usize * self.bits as usize / 8
    }

    pub fn block_bytes(self) -> usize {
        2 * self.scale.bytes() + self.packed_bytes()
    }

    /// Value i of a packed bit stream.
    pub fn value(self, packed: &[u8], i: usize) -> u32 {
        let bit = i * self.bits as usize;
        let lo = packed[bit / 8] as u32;
        let hi = packed.get(bit / 8 + 1).copied().unwrap_or(0) as u32;
        ((lo | hi << 8) >> (bit % 8)) & ((1 << self.bits) - 1)
    }

    /// Blocks (whole ones) to f32.
    pub fn dequantize(self, blocks: &[u8]) -> Vec<f32> {
        let s = self.scale.bytes();
        blocks
            .chunks_exact(self.block_bytes())
            .flat_map(|b| {
                let (scale, bias, packed) = (self.scale.read(b), self.scale.read(&b[s..]), &b[2 * s..]);
                (0..self.group as usize).map(move |i| (self.value(packed, i) as f32).mul_add(scale, bias)) // as the kernels: one rounding
            })
            .collect()
    }

    /// Rows of f32 values (whole groups) quantised as MLX's `mx.quantize` does, as blocks:
    /// per group, the scale spans min..max with the edge of larger magnitude landing exactly on
    /// a level (scale = edge / round(edge / scale)) and bias = that edge; q = round((x - bias) / scale).
    pub fn quantize(self, x: &[f32]) -> Vec<u8> {
        let levels = ((1u32 << self.bits) - 1) as f32;
        let mut out = Vec::with_capacity(x.len() / self.group as usize * self.block_bytes());
        for g in x.chunks_exact(self.group as usize) {
            let (min, max) = g.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let by_min = min.abs() > max.abs();
            let mut scale = ((max - min) / levels).max(1e-7);
            scale = if by_min { scale } else { -scale };
            let edge = if by_min { min } else { max };
            let q0 = (edge / scale).round_ties_even();
            let mut bias = 0.0;
            if q0 != 0.0 {
                scale = edge / q0;
                bias = edge;
            }
            out.extend(self.scale.write(scale));
            out.extend(self.scale.write(bias));
            let mut packed = vec![0u8; self.packed_bytes()];
            for (i, v) in g.iter().enumerate() {
                let q = ((v - bias) / scale).round_ties_even().clamp(0.0, levels) as u32;
                let bit = i * self.bits as usize;
                let wide = q << (bit % 8);
                packed[bit / 8] |= wide as u8;
                if let Some(next) = packed.get_mut(bit / 8 + 1) {
                    *next |= (wide >> 8) as u8;
                }
            }
            out.extend(packed);
        }
        out
    }

    /// Blocks back into MLX's three tensors' bytes: (packed values, scales, biases).
    pub fn split(self, blocks: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let s = self.scale.bytes();
        let (mut packed, mut scales, mut biases) = (vec![], vec![], vec![]);
        for b in blocks.chunks_exact(self.block_bytes()) {
            scales.extend_from_slice(&b[..s]);
            biases.extend_from_slice(&b[s..2 * s]);
            packed.extend_from_slice(&b[2 * s..]);
        }
        (packed, scales, biases)
    }

    /// Interleaves MLX's tensors of one row into blocks: `packed` (the row's u32 words as
    /// bytes), `scales` and `biases` (the row's, stored bytes).
    pub fn interleave(self, packed: &[u8], scales: &[u8], biases: &[u8], out: &mut Vec<u8>) {
        let (s, p) = (self.scale.bytes(), self.packed_bytes());
        for ((q, scale), bias) in packed.chunks_exact(p).zip(scales.chunks_exact(s)).zip(biases.chunks_exact(s)) {
            out.extend_from_slice(scale);
            out.extend_from_slice(bias);
            out.extend_from_slice(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_layout() {
        // MLX4g64-BF16: bf16 scale | bf16 bias | 32 bytes of nibbles
        assert_eq!(Affine::new(4, 64, ScaleType::BF16).unwrap().block_bytes(), 36);
        // MLX3g32-F32: f32 scale | f32 bias | 12 bytes of 3-bit values
        assert_eq!(Affine::new(3, 32, ScaleType::F32).unwrap().block_bytes(), 20);
    }

    #[test]
    fn names_round_trip_and_values_unpack() {
        let a = Affine::new(3, 64, ScaleType::BF16).unwrap();
        assert_eq!(Affine::parse(&a.name()), Some(a));
        assert_eq!(Affine::new(7, 64, ScaleType::F16), None);
        // 3-bit values 0..8 then 7: bit stream 000 100 010 110 ...
        let mut packed = vec![0u8; 24];
        for i in 0..64 {
            let (bit, v) = (3 * i, (i % 8) as u32);
            for j in 0..3 {
                if v >> j & 1 == 1 {
                    packed[(bit + j) / 8] |= 1 << ((bit + j) % 8);
                }
            }
        }
        assert!((0..64).all(|i| a.value(&packed, i) == (i % 8) as u32));
        let mut block = bf16::from_f32(0.5).to_le_bytes().to_vec();
        block.extend(bf16::from_f32(-1.0).to_le_bytes());
        block.extend(&packed);
        let x = a.dequantize(&block);
        assert_eq!((x[0], x[7], x[63]), (-1.0, 2.5, 2.5));
    }
}
