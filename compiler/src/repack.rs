//! Weights repacked at compile time for the dot-product kernels (lower/dot.rs): 16 columns
//! interleaved, so that one `vpdpbusd` multiplies 4 elements of 16 columns by 4 activations
//! broadcast to every lane (one `vdpbf16ps` 2 elements, for bf16 weights), and a block's scales
//! are decoded once for 16 columns as vectors.
//!
//! BF16 [N, K]: per group of 16 columns, per pair of elements, 64 bytes: column c's two at 4c.
//!
//! Every format becomes unsigned quants q with, per *unit* (the elements sharing a scale: 16,
//! 32 or an MLX group), x = scale·q + min — exactly, in f32. A matrix [N, K] is stored as
//! ⌈N / 16⌉ groups of 16 columns (missing columns zero), each a stream along K of:
//!   per super-block of K-quants (256): d [16] f16 | −dmin [16] f16 (formats with mins)
//!   per unit: scales [16] | mins [16] (unless min = offset · scale) | quants
//! Scales are the source's floats (Q4_0…Q8_0: f16; MLX: its type), or for K-quants the u8 (Q6_K:
//! i8) factor of d; stored mins likewise (K-quants: u8 factors of −dmin).
//! Quants, 64 bytes per 4 elements of 16 columns, byte 4c + i = element i of column c:
//!   8 bits: unit / 4 such vectors;
//!   4–6 bits: unit / 8 vectors whose low nibbles are one step of 4 and high nibbles the next,
//!   then for each bit above the fourth a 64-bit mask per step (bit 4c + i).
use rayon::prelude::*;

use crate::gguf::blocks::{half_at, k4_quants, q4_quants, q5_quants, q6_k_quants, scale_min_k4};
use crate::lower::weight_format::WeightFormat;
use crate::mlx::affine::ScaleType;

/// The artifact's name for rows [a, b) (all: None) of weight `name` packed.
pub fn packed_name(name: &str, rows: Option<(usize, usize)>) -> String {
    format!("{name}{}#x16", rows.map_or(String::new(), |(a, b)| format!("[{a}..{b}]")))
}

/// Columns interleaved in a group.
pub const COLS: usize = 16;

/// How a unit's scale is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Float(ScaleType),
    /// A u8 (`signed`: i8) factor of the super-block's f16 d.
    Factor { signed: bool },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Min {
    /// min = offset · scale (not stored).
    Offset(f32),
    /// Stored as the scale is (factors of −dmin for K-quants).
    Stored,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Packing {
    pub bits: u32,
    /// Elements per scale.
    pub unit: usize,
    /// Elements per super-block header (= `unit` for formats without one).
    pub sup: usize,
    pub scale: Scale,
    pub min: Min,
}

impl Packing {
    pub fn of(format: WeightFormat) -> Option<Packing> {
        use WeightFormat::*;
        let f16 = Scale::Float(ScaleType::F16);
        let direct = |bits, min| Packing { bits, unit: 32, sup: 32, scale: f16, min };
        Some(match format {
            Q8_0 => direct(8, Min::Offset(-128.0)),
            Q4_0 => direct(4, Min::Offset(-8.0)),
            Q4_1 => direct(4, Min::Stored),
            Q5_0 => direct(5, Min::Offset(-16.0)),
            Q5_1 => direct(5, Min::Stored),
            Q4_K | Q5_K => Packing { bits: if format == Q4_K { 4 } else { 5 }, unit: 32, sup: 256, scale: Scale::Factor { signed: false }, min: Min::Stored },
            Q6_K => Packing { bits: 6, unit: 16, sup: 256, scale: Scale::Factor { signed: true }, min: Min::Offset(-32.0) },
            Affine(a) if matches!(a.bits, 4 | 5 | 6 | 8) => Packing { bits: a.bits as u32, unit: a.group as usize, sup: a.group as usize, scale: Scale::Float(a.scale), min: Min::Stored },
            _ => return None,
        })
    }

    fn factors(&self) -> bool {
        matches!(self.scale, Scale::Factor { .. })
    }

    fn scale_bytes(&self) -> usize {
        match self.scale {
            Scale::Float(t) => t.bytes(),
            Scale::Factor { .. } => 1,
        }
    }

    pub fn stored_min(&self) -> bool {
        self.min == Min::Stored
    }

    /// A super-block header's bytes (d, and −dmin with stored mins).
    pub fn header_bytes(&self) -> usize {
        if self.factors() { 2 * COLS * (1 + self.stored_min() as usize) } else { 0 }
    }

    /// A unit's scales and mins.
    pub fn unit_scale_bytes(&self) -> usize {
        COLS * self.scale_bytes() * (1 + self.stored_min() as usize)
    }

    pub fn unit_bytes(&self) -> usize {
        self.unit_scale_bytes() + COLS * self.unit * self.bits as usize / 8
    }

    pub fn super_bytes(&self) -> usize {
        self.header_bytes() + self.sup / self.unit * self.unit_bytes()
    }

    /// Bytes of one group of 16 columns of `k` elements.
    pub fn group_bytes(&self, k: usize) -> usize {
        k / self.sup * self.super_bytes()
    }

    pub fn tensor_bytes(&self, n: usize, k: usize) -> usize {
        n.div_ceil(COLS) * self.group_bytes(k)
    }

    /// Whether rows of `k` split into whole super-blocks and blocks of 32.
    pub fn fits(&self, k: usize) -> bool {
        k > 0 && k.is_multiple_of(self.sup) && k.is_multiple_of(32)
    }
}

/// One row decoded: quants [K], per unit the stored scale and min bytes, per super-block the
/// f16 bytes of d and −dmin.
#[derive(Default)]
struct Row {
    q: Vec<u8>,
    scales: Vec<u8>,
    mins: Vec<u8>,
    d: Vec<u8>,
    neg_dmin: Vec<u8>,
}

fn decode(format: WeightFormat, bytes: &[u8], k: usize) -> Row {
    use WeightFormat::*;
    let mut r = Row::default();
    for b in bytes.chunks_exact(format.block_bytes().expect("a block format") as usize) {
        match format {
            Q8_0 => {
                r.scales.extend(&b[..2]);
                r.q.extend(b[2..34].iter().map(|q| q ^ 0x80));
            }
            Q4_0 | Q4_1 | Q5_0 | Q5_1 => {
                let min = matches!(format, Q4_1 | Q5_1);
                let at = if min { 4 } else { 2 };
                r.scales.extend(&b[..2]);
                if min {
                    r.mins.extend(&b[2..4]);
                }
                r.q.extend(if matches!(format, Q4_0 | Q4_1) { q4_quants(&b[at..]) } else { q5_quants(&b[at..], &b[at + 4..]) });
            }
            Q4_K | Q5_K => {
                r.d.extend(&b[..2]);
                r.neg_dmin.extend([b[2], b[3] ^ 0x80]);
                for s in 0..8 {
                    let (sc, m) = scale_min_k4(s, &b[4..16]);
                    r.scales.push(sc);
                    r.mins.push(m);
                }
                r.q.extend(k4_quants(b, format == Q5_K));
            }
            Q6_K => {
                r.d.extend(&b[208..210]);
                r.scales.extend(&b[192..208]);
                r.q.extend(q6_k_quants(b));
            }
            Affine(a) => {
                let s = a.scale.bytes();
                r.scales.extend(&b[..s]);
                r.mins.extend(&b[s..2 * s]);
                r.q.extend((0..a.group as usize).map(|i| a.value(&b[2 * s..], i) as u8));
            }
            _ => unreachable!("checked by Packing::of"),
        }
    }
    debug_assert_eq!(r.q.len(), k);
    r
}

/// Bytes of rows [n, k] of `format` packed, if it packs.
pub fn packed_bytes(format: WeightFormat, n: usize, k: usize) -> Option<usize> {
    match format {
        WeightFormat::BF16 => Some(n.div_ceil(COLS) * COLS * k * 2),
        _ => Packing::of(format).map(|p| p.tensor_bytes(n, k)),
    }
}

/// Rows [n, k] of `format` (whole rows, `format.row_bytes(k)` each) in the packed layout.
pub fn pack(format: WeightFormat, bytes: &[u8], n: usize, k: usize) -> Vec<u8> {
    if format == WeightFormat::BF16 {
        let mut out = vec![0u8; packed_bytes(format, n, k).unwrap()];
        out.par_chunks_mut(COLS * k * 2).enumerate().for_each(|(g, out)| {
            for (c, row) in bytes.chunks_exact(2 * k).skip(COLS * g).take(COLS).enumerate() {
                for (s, pair) in row.chunks_exact(4).enumerate() {
                    out[64 * s + 4 * c..][..4].copy_from_slice(pair);
                }
            }
        });
        return out;
    }
    let p = Packing::of(format).expect("a packable format");
    let row_bytes = format.row_bytes(k) as usize;
    let zero = vec![0u8; row_bytes];
    let mut out = vec![0u8; p.tensor_bytes(n, k)];
    out.par_chunks_mut(p.group_bytes(k)).enumerate().for_each(|(g, out)| {
        let rows: Vec<Row> = (0..COLS).map(|c| decode(format, bytes.get((COLS * g + c) * row_bytes..(COLS * g + c + 1) * row_bytes).unwrap_or(&zero), k)).collect();
        write_group(&p, &rows, k, out);
    });
    out
}

fn write_group(p: &Packing, rows: &[Row], k: usize, out: &mut [u8]) {
    let mut w = 0;
    let mut put = |bytes: &[u8]| {
        out[w..w + bytes.len()].copy_from_slice(bytes);
        w += bytes.len();
    };
    let sb = p.scale_bytes();
    let units = p.sup / p.unit;
    for s in 0..k / p.sup {
        if p.factors() {
            rows.iter().for_each(|r| put(&r.d[2 * s..2 * s + 2]));
            if p.stored_min() {
                rows.iter().for_each(|r| put(&r.neg_dmin[2 * s..2 * s + 2]));
            }
        }
        for u in s * units..(s + 1) * units {
            rows.iter().for_each(|r| put(&r.scales[sb * u..sb * (u + 1)]));
            if p.stored_min() {
                rows.iter().for_each(|r| put(&r.mins[sb * u..sb * (u + 1)]));
            }
            let q = |c: usize, e: usize| rows[c].q[u * p.unit + e];
            // 64 bytes of step `st` (4 elements of 16 columns) of `f(quant)`
            let step = |st: usize, f: &dyn Fn(u8) -> u8| -> [u8; 64] { std::array::from_fn(|b| f(q(b / 4, 4 * st + b % 4))) };
            if p.bits == 8 {
                (0..p.unit / 4).for_each(|st| put(&step(st, &|q| q)));
                continue;
            }
            for pair in 0..p.unit / 8 {
                let (lo, hi) = (step(2 * pair, &|q| q & 15), step(2 * pair + 1, &|q| q & 15));
                put(&std::array::from_fn::<u8, 64, _>(|b| lo[b] | hi[b] << 4));
            }
            for bit in 4..p.bits {
                for st in 0..p.unit / 4 {
                    let mask = step(st, &|q| (q >> bit) & 1).iter().enumerate().fold(0u64, |m, (b, &v)| m | (v as u64) << b);
                    put(&mask.to_le_bytes());
                }
            }
        }
    }
    debug_assert_eq!(w, out.len());
}

/// The value of element `e` of column `c` in a packed tensor (for tests): scale · q + min.
pub fn value(format: WeightFormat, packed: &[u8], k: usize, c: usize, e: usize) -> f32 {
    if format == WeightFormat::BF16 {
        let at = c / COLS * COLS * k * 2 + 64 * (e / 2) + 4 * (c % COLS) + 2 * (e % 2);
        return ScaleType::BF16.read(&packed[at..]);
    }
    let p = Packing::of(format).expect("a packable format");
    let g = &packed[c / COLS * p.group_bytes(k)..][..p.group_bytes(k)];
    let (c, s, u) = (c % COLS, e / p.sup, e % p.sup / p.unit);
    let sup = &g[s * p.super_bytes()..];
    let unit = &sup[p.header_bytes() + u * p.unit_bytes()..];
    let sb = p.scale_bytes();
    let float = |at: usize| match p.scale {
        Scale::Float(t) => t.read(&unit[at..]),
        Scale::Factor { signed } => {
            let f = if signed { unit[at] as i8 as f32 } else { unit[at] as f32 };
            f * half_at(sup, if at < COLS * sb { 2 * c } else { 2 * COLS + 2 * c })
        }
    };
    let scale = float(sb * c);
    let min = match p.min {
        Min::Offset(o) => o * scale,
        Min::Stored => float(COLS * sb + sb * c),
    };
    let quants = &unit[p.unit_scale_bytes()..];
    let (i, st) = (e % p.unit, e % p.unit / 4);
    let byte = 4 * c + i % 4;
    let q = if p.bits == 8 {
        quants[64 * st + byte]
    } else {
        let nibble = (quants[64 * (st / 2) + byte] >> (4 * (st % 2))) & 15;
        let planes = &quants[p.unit / 8 * 64..];
        (4..p.bits).fold(nibble, |q, bit| {
            let mask = u64::from_le_bytes(planes[8 * ((bit as usize - 4) * p.unit / 4 + st)..][..8].try_into().unwrap());
            q | (((mask >> byte) & 1) as u8) << bit
        })
    };
    q as f32 * scale + min
}
