//! Weight formats kernels read directly: f32, f16, bf16, the GGUF blocks Q8_0, Q4_0, Q4_1,
//! Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (layouts pinned in gguf/blocks.rs) and MLX's affine
//! groups (mlx/affine.rs). Matmul and gather walk a weight row one *step* at a time (a block for
//! the quantised formats: 32 elements, a K-quant super-block of 256 in 8 *parts* of 32, an MLX
//! group of 32, 64 or 128 in parts of 32; one vector otherwise) and get each part's values as f32
//! vectors of the target's lanes, dequantised in registers. A super-block's part index is a
//! constant, so its bit offsets and shifts fold away.
use inkwell::types::VectorType;
use inkwell::values::{IntValue, PointerValue, VectorValue};
use inkwell::IntPredicate;

use super::codegen::{ok, Cg};
use crate::mlx::affine::Affine;
use crate::gguf::blocks::{Q2_K_BYTES, Q3_K_BYTES, Q4_0_BYTES, Q4_1_BYTES, Q4_K_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q5_K_BYTES, Q6_K_BYTES, Q8_0_BYTES};

/// Named as GGUF names them.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    /// MLX's affine quantisation, repacked into one block per group.
    Affine(Affine),
}

const BLOCK: u64 = 32;

impl WeightFormat {
    /// The format of a stored dtype name ("F16", "Q4_1", "MLX4g64-BF16", …), if kernels read it directly.
    pub fn from_name(name: &str) -> Option<WeightFormat> {
        use WeightFormat::*;
        let fixed = [F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K];
        fixed.into_iter().find(|f| f.name() == name).or_else(|| crate::mlx::affine::Affine::parse(name).map(WeightFormat::Affine))
    }

    /// Whole rows of this format as f32.
    pub fn dequantize(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            WeightFormat::Affine(a) => a.dequantize(bytes),
            _ => {
                let id = crate::gguf::blocks::TYPES.iter().find(|t| t.1 == self.name()).expect("every fixed format is a GGUF type").0;
                crate::gguf::blocks::dequantize(id, bytes)
            }
        }
    }

    pub fn name(self) -> String {
        let fixed = match self {
            WeightFormat::F32 => "F32",
            WeightFormat::F16 => "F16",
            WeightFormat::BF16 => "BF16",
            WeightFormat::Q8_0 => "Q8_0",
            WeightFormat::Q4_0 => "Q4_0",
            WeightFormat::Q4_1 => "Q4_1",
            WeightFormat::Q5_0 => "Q5_0",
            WeightFormat::Q5_1 => "Q5_1",
            WeightFormat::Q2_K => "Q2_K",
            WeightFormat::Q3_K => "Q3_K",
            WeightFormat::Q4_K => "Q4_K",
            WeightFormat::Q5_K => "Q5_K",
            WeightFormat::Q6_K => "Q6_K",
            WeightFormat::Affine(a) => return a.name(),
        };
        fixed.to_string()
    }

    /// Bytes of a block (of block_elems), for the quantised formats.
    pub fn block_bytes(self) -> Option<u64> {
        match self {
            WeightFormat::Q8_0 => Some(Q8_0_BYTES as u64),
            WeightFormat::Q4_0 => Some(Q4_0_BYTES as u64),
            WeightFormat::Q4_1 => Some(Q4_1_BYTES as u64),
            WeightFormat::Q5_0 => Some(Q5_0_BYTES as u64),
            WeightFormat::Q5_1 => Some(Q5_1_BYTES as u64),
            WeightFormat::Q2_K => Some(Q2_K_BYTES as u64),
            WeightFormat::Q3_K => Some(Q3_K_BYTES as u64),
            WeightFormat::Q4_K => Some(Q4_K_BYTES as u64),
            WeightFormat::Q5_K => Some(Q5_K_BYTES as u64),
            WeightFormat::Q6_K => Some(Q6_K_BYTES as u64),
            WeightFormat::Affine(a) => Some(a.block_bytes() as u64),
            _ => None,
        }
    }

    /// Elements of a block: 256 for the K-quants' super-blocks, an MLX group, else 32.
    fn block_elems(self) -> u64 {
        if let WeightFormat::Affine(a) = self {
            return a.group as u64;
        }
        if matches!(self, WeightFormat::Q2_K | WeightFormat::Q3_K | WeightFormat::Q4_K | WeightFormat::Q5_K | WeightFormat::Q6_K) { 256 } else { BLOCK }
    }

    fn elem_bytes(self) -> u64 {
        if self == WeightFormat::F32 { 4 } else { 2 }
    }

    /// Blocks of 32 (rows are whole blocks), rather than single elements.
    pub fn is_blocked(self) -> bool {
        self.block_bytes().is_some()
    }

    /// Whether a row of `k` elements can be stored in this format.
    pub fn fits(self, k: usize) -> bool {
        self.block_bytes().is_none() || (k as u64).is_multiple_of(self.block_elems())
    }

    pub fn row_bytes(self, k: usize) -> u64 {
        match self.block_bytes() {
            Some(b) => k as u64 / self.block_elems() * b,
            None => k as u64 * self.elem_bytes(),
        }
    }

    /// Bytes of a tensor of `shape` (rows of its last dimension) in this format.
    pub fn tensor_bytes(self, shape: &[usize]) -> u64 {
        let rows = shape[..shape.len().saturating_sub(1)].iter().product::<usize>() as u64;
        rows * self.row_bytes(shape.last().copied().unwrap_or(1))
    }

    /// Elements one step covers with vectors of `lanes`.
    pub fn step(self, lanes: u32) -> u64 {
        if self.block_bytes().is_some() { BLOCK * self.parts() } else { lanes as u64 }
    }

    /// Parts of a step: 8 parts of 32 for a K-quant super-block, group / 32 for MLX's, else 1.
    pub fn parts(self) -> u64 {
        if self.block_elems() > BLOCK { self.block_elems() / BLOCK } else { 1 }
    }

    /// The f32 values of elements k0 .. k0 + step of the row at `row` (a byte pointer), as
    /// step / lanes vectors of `lanes`. k0 is a multiple of the step.
    pub fn load_step<'ctx>(self, cg: &Cg<'ctx>, row: PointerValue<'ctx>, k0: IntValue<'ctx>, lanes: u32) -> Vec<VectorValue<'ctx>> {
        (0..self.parts()).flat_map(|part| self.load_part(cg, row, k0, part, lanes)).collect()
    }

    /// Part `part` of the step at k0: elements k0 + 32·part .. (the whole step where it has one part).
    pub fn load_part<'ctx>(self, cg: &Cg<'ctx>, row: PointerValue<'ctx>, k0: IntValue<'ctx>, part: u64, lanes: u32) -> Vec<VectorValue<'ctx>> {
        let Some(block_bytes) = self.block_bytes() else {
            let at = cg.byte_ptr(row, cg.mul(k0, cg.int(self.elem_bytes())));
            return vec![match self {
                WeightFormat::F32 => cg.load(at, cg.int(0), lanes),
                WeightFormat::F16 => f16_to_f32(cg, cg.load_ints(at, cg.ctx.i16_type().vec_type(lanes))),
                _ => bf16_to_f32(cg, cg.load_ints(at, cg.ctx.i16_type().vec_type(lanes))),
            }];
        };
        let log2_elems = self.block_elems().trailing_zeros() as u64;
        let block = cg.byte_ptr(row, cg.mul(ok!(cg.b.build_right_shift(k0, cg.int(log2_elems), false, "")), cg.int(block_bytes)));
        if let WeightFormat::Affine(a) = self {
            return super::affine::part(cg, a, block, part, lanes);
        }
        if log2_elems > 5 {
            return self.k_quant_part(cg, block, part, lanes);
        }
        let half = |offset: u64| f16_splat(cg, block, offset, lanes);
        let d = half(0);
        let i32s = cg.i32.vec_type(lanes);
        let int_const = |v: u64| VectorType::const_vector(&vec![cg.i32.const_int(v, false); lanes as usize]);
        (0..BLOCK / lanes as u64)
            .map(|s| {
                let first = s * lanes as u64; // element of the block this vector starts at
                let bytes_ty = cg.ctx.i8_type().vec_type(lanes);
                match self {
                    WeightFormat::Q8_0 => {
                        let q = cg.load_ints(cg.byte_ptr(block, cg.int(2 + first)), bytes_ty);
                        let q = ok!(cg.b.build_int_s_extend(q, i32s, ""));
                        cg.fmul(ok!(cg.b.build_signed_int_to_float(q, cg.vt(lanes), "")), d)
                    }
                    _ => {
                        let Nibbles { qs, qh, min, offset } = self.nibbles();
                        // elements 0..16 are the low nibbles of bytes 0..16, 16..32 the high ones
                        let q = cg.load_ints(cg.byte_ptr(block, cg.int(qs + first % 16)), bytes_ty);
                        let q = ok!(cg.b.build_int_z_extend(q, i32s, ""));
                        let mut q = if first < 16 { ok!(cg.b.build_and(q, int_const(15), "")) } else { ok!(cg.b.build_right_shift(q, int_const(4), false, "")) };
                        if let Some(qh) = qh {
                            // element e's fifth bit is bit e of the u32 at qh: this vector's `lanes`
                            // bits become a lane mask (one mask-register move on AVX-512)
                            let bits = cg.extract_int(cg.load_ints(cg.byte_ptr(block, cg.int(qh)), cg.i32.vec_type(1)));
                            let mine = ok!(cg.b.build_right_shift(bits, cg.i32.const_int(first, false), false, ""));
                            let mine = ok!(cg.b.build_int_truncate(mine, ok!(cg.ctx.custom_width_int_type(std::num::NonZeroU32::new(lanes).expect("lanes > 0"))), ""));
                            let mask = ok!(cg.b.build_bit_cast(mine, cg.ctx.bool_type().vec_type(lanes), "")).into_vector_value();
                            let with_bit = ok!(cg.b.build_or(q, int_const(16), ""));
                            q = ok!(cg.b.build_select(mask, with_bit, q, "")).into_vector_value();
                        }
                        match min {
                            Some(m) => cg.fma(ok!(cg.b.build_signed_int_to_float(q, cg.vt(lanes), "")), d, half(m)),
                            None => {
                                let q = ok!(cg.b.build_int_sub(q, int_const(offset), ""));
                                cg.fmul(ok!(cg.b.build_signed_int_to_float(q, cg.vt(lanes), "")), d)
                            }
                        }
                    }
                }
            })
            .collect()
    }
}

impl WeightFormat {
    /// Part t of a K-quant super-block at `block`: elements 32t .. 32t + 32. t is a constant, so
    /// the arithmetic on it below folds to constants as it is built.
    fn k_quant_part<'ctx>(self, cg: &Cg<'ctx>, block: PointerValue<'ctx>, t: u64, lanes: u32) -> Vec<VectorValue<'ctx>> {
        let i32s = cg.i32.vec_type(lanes);
        let c = |v: u64| cg.i32.const_int(v, false);
        let t = c(t);
        let and = |a: IntValue<'ctx>, m: u64| ok!(cg.b.build_and(a, c(m), ""));
        let shr = |a: IntValue<'ctx>, n: IntValue<'ctx>| ok!(cg.b.build_right_shift(a, n, false, ""));
        let at = |off: IntValue<'ctx>| cg.byte_ptr(block, ok!(cg.b.build_int_z_extend(off, cg.i64, "")));
        // one byte at a run-time offset, as i32 (signed for Q6_K's scales)
        let byte = |off: IntValue<'ctx>, signed: bool| {
            let b = ok!(cg.b.build_load(cg.ctx.i8_type(), at(off), "")).into_int_value();
            if signed { ok!(cg.b.build_int_s_extend(b, cg.i32, "")) } else { ok!(cg.b.build_int_z_extend(b, cg.i32, "")) }
        };
        let splat_int = |x: IntValue<'ctx>| {
            let one = ok!(cg.b.build_insert_element(i32s.get_undef(), x, cg.int(0), ""));
            ok!(cg.b.build_shuffle_vector(one, i32s.get_undef(), i32s.const_zero(), ""))
        };
        let splat_float = |x: IntValue<'ctx>| cg.splat(ok!(cg.b.build_signed_int_to_float(x, cg.f32, "")), lanes);
        let half = |offset: u64| f16_splat(cg, block, offset, lanes);
        // `lanes` bytes at a run-time offset + `first`, widened to i32
        let bytes = |off: IntValue<'ctx>, first: u64| {
            let v = cg.load_ints(cg.byte_ptr(at(off), cg.int(first)), cg.ctx.i8_type().vec_type(lanes));
            ok!(cg.b.build_int_z_extend(v, i32s, ""))
        };
        let vand = |v: VectorValue<'ctx>, m: u64| ok!(cg.b.build_and(v, splat_int(c(m)), ""));
        let vshr = |v: VectorValue<'ctx>, n: IntValue<'ctx>| ok!(cg.b.build_right_shift(v, splat_int(n), false, ""));
        let to_f32 = |v: VectorValue<'ctx>| ok!(cg.b.build_signed_int_to_float(v, cg.vt(lanes), ""));
        let steps = 0..BLOCK / lanes as u64;
        let add = |a: IntValue<'ctx>, b: u64| ok!(cg.b.build_int_add(a, c(b), ""));
        let mul = |a: IntValue<'ctx>, b: u64| ok!(cg.b.build_int_mul(a, c(b), ""));
        // Q2_K / Q3_K: 16 sub-blocks of 16; this step holds sub-blocks 2t (j = 0) and 2t + 1 (j = 1),
        // their 2-bit values in qs[32(t / 4) + 16j + l] at bits 2(t % 4), as gguf/blocks.rs reads them
        let two_bits = |qs: u64, first: u64| {
            let j = first / 16;
            vand(vshr(bytes(add(mul(shr(t, c(2)), 32), qs + 16 * j), first % 16), mul(and(t, 3), 2)), 3)
        };
        if self == WeightFormat::Q2_K {
            let (d, dmin) = (half(80), half(82));
            return steps
                .map(|s| {
                    let first = s * lanes as u64;
                    let sc = byte(add(mul(t, 2), first / 16), false); // scale | min << 4
                    let (scale, min) = (cg.fmul(d, splat_float(and(sc, 15))), cg.fmul(dmin, splat_float(shr(sc, c(4)))));
                    cg.fsub(cg.fmul(scale, to_f32(two_bits(16, first))), min)
                })
                .collect();
        }
        if self == WeightFormat::Q3_K {
            let d = half(108);
            return steps
                .map(|s| {
                    let (first, j) = (s * lanes as u64, s * lanes as u64 / 16);
                    // sub-block S = 2t + j's 6-bit scale: low 4 bits in packed[S % 8] (nibble S / 8),
                    // high 2 bits in packed[8 + S % 4] (pair S / 4); packed at 96
                    let sub = add(mul(t, 2), j);
                    let low = and(shr(byte(add(and(sub, 7), 96), false), mul(shr(sub, c(3)), 4)), 15);
                    let high = and(shr(byte(add(and(sub, 3), 104), false), mul(shr(sub, c(2)), 2)), 3);
                    let sc = ok!(cg.b.build_int_sub(ok!(cg.b.build_or(low, ok!(cg.b.build_left_shift(high, c(4), "")), "")), c(32), ""));
                    // q - 4 unless its high bit (bit t of hmask[16j + l]) is set
                    let hbit = vand(vshr(bytes(c(16 * j), first % 16), t), 1);
                    let q = ok!(cg.b.build_int_sub(ok!(cg.b.build_or(two_bits(32, first), ok!(cg.b.build_left_shift(hbit, splat_int(c(2)), "")), "")), splat_int(c(4)), ""));
                    cg.fmul(cg.fmul(d, splat_float(sc)), to_f32(q))
                })
                .collect();
        }
        if self == WeightFormat::Q6_K {
            // elements 128h + 32k + l: low 4 bits from ql[64h + 32(k & 1) + l] (nibble k >> 1),
            // high 2 bits from qh[32h + l] (pair k), scale sc[8h + 2k + l / 16]
            let (h, k) = (shr(t, c(2)), and(t, 3));
            let ql = ok!(cg.b.build_int_add(ok!(cg.b.build_int_mul(h, c(64), "")), ok!(cg.b.build_int_mul(and(k, 1), c(32), "")), ""));
            let qh = ok!(cg.b.build_int_add(c(128), ok!(cg.b.build_int_mul(h, c(32), "")), ""));
            let (lo_shift, hi_shift) = (ok!(cg.b.build_int_mul(shr(k, c(1)), c(4), "")), ok!(cg.b.build_int_mul(k, c(2), "")));
            let sc = ok!(cg.b.build_int_add(ok!(cg.b.build_int_add(c(192), ok!(cg.b.build_int_mul(h, c(8), "")), "")), ok!(cg.b.build_int_mul(k, c(2), "")), ""));
            let d = half(208);
            return steps
                .map(|s| {
                    let first = s * lanes as u64;
                    let lo = vand(vshr(bytes(ql, first), lo_shift), 15);
                    let hi = vand(vshr(bytes(qh, first), hi_shift), 3);
                    let q = ok!(cg.b.build_or(lo, ok!(cg.b.build_left_shift(hi, splat_int(c(4)), "")), ""));
                    let q = ok!(cg.b.build_int_sub(q, splat_int(c(32)), ""));
                    let scale = cg.fmul(d, splat_float(byte(ok!(cg.b.build_int_add(sc, c(first / 16), "")), true)));
                    cg.fmul(scale, to_f32(q))
                })
                .collect();
        }
        let (scale, min) = k4_scale_min(cg, block, t, lanes);
        let fifth = self == WeightFormat::Q5_K;
        // sub-blocks 2i and 2i + 1 share qs[32i ..] (low and high nibbles); Q5_K's fifth bit is bit t of qh[l]
        let qs = ok!(cg.b.build_int_add(c(if fifth { 48 } else { 16 }), ok!(cg.b.build_int_mul(shr(t, c(1)), c(32), "")), ""));
        let nibble_shift = ok!(cg.b.build_int_mul(and(t, 1), c(4), ""));
        steps
            .map(|s| {
                let first = s * lanes as u64;
                let mut q = vand(vshr(bytes(qs, first), nibble_shift), 15);
                if fifth {
                    let bit = vand(vshr(bytes(c(16), first), t), 1);
                    q = ok!(cg.b.build_or(q, ok!(cg.b.build_left_shift(bit, splat_int(c(4)), "")), ""));
                }
                cg.fsub(cg.fmul(scale, to_f32(q)), min)
            })
            .collect()
    }
}

/// Sub-block t's (i32, a constant or not) d·scale and dmin·min of the Q4_K/Q5_K super-block at
/// `block`, in every lane: 6-bit values packed in bytes 4..16, as gguf/blocks.rs reads them.
pub fn k4_scale_min<'ctx>(cg: &Cg<'ctx>, block: PointerValue<'ctx>, t: IntValue<'ctx>, lanes: u32) -> (VectorValue<'ctx>, VectorValue<'ctx>) {
    let c = |v: u64| cg.i32.const_int(v, false);
    let and = |a: IntValue<'ctx>, m: u64| ok!(cg.b.build_and(a, c(m), ""));
    let shr = |a: IntValue<'ctx>, n: u64| ok!(cg.b.build_right_shift(a, c(n), false, ""));
    let byte = |off: IntValue<'ctx>| {
        let at = cg.byte_ptr(block, ok!(cg.b.build_int_z_extend(off, cg.i64, "")));
        ok!(cg.b.build_int_z_extend(ok!(cg.b.build_load(cg.ctx.i8_type(), at, "")).into_int_value(), cg.i32, ""))
    };
    let add = |a: IntValue<'ctx>, b: u64| ok!(cg.b.build_int_add(a, c(b), ""));
    let (a, b, other) = (byte(add(t, 4)), byte(add(t, 8)), byte(add(ok!(cg.b.build_xor(t, c(4), "")), 4)));
    let low = ok!(cg.b.build_int_compare(IntPredicate::ULT, t, c(4), ""));
    let high_bits = |x: IntValue<'ctx>| ok!(cg.b.build_left_shift(shr(x, 6), c(4), ""));
    let sc = ok!(cg.b.build_select(low, and(a, 63), ok!(cg.b.build_or(and(b, 15), high_bits(other), "")), "")).into_int_value();
    let m = ok!(cg.b.build_select(low, and(b, 63), ok!(cg.b.build_or(shr(b, 4), high_bits(a), "")), "")).into_int_value();
    let splat_float = |x: IntValue<'ctx>| cg.splat(ok!(cg.b.build_signed_int_to_float(x, cg.f32, "")), lanes);
    (cg.fmul(f16_splat(cg, block, 0, lanes), splat_float(sc)), cg.fmul(f16_splat(cg, block, 2, lanes), splat_float(m)))
}

/// Where a 4- or 5-bit block keeps its parts: x = (q - offset)·d, or q·d + m with a min.
struct Nibbles {
    /// byte offset of the 16 nibble bytes
    qs: u64,
    /// byte offset of the u32 of fifth bits (5-bit formats)
    qh: Option<u64>,
    /// byte offset of the f16 min
    min: Option<u64>,
    offset: u64,
}

impl WeightFormat {
    fn nibbles(self) -> Nibbles {
        match self {
            WeightFormat::Q4_0 => Nibbles { qs: 2, qh: None, min: None, offset: 8 },
            WeightFormat::Q4_1 => Nibbles { qs: 4, qh: None, min: Some(2), offset: 0 },
            WeightFormat::Q5_0 => Nibbles { qs: 6, qh: Some(2), min: None, offset: 16 },
            WeightFormat::Q5_1 => Nibbles { qs: 8, qh: Some(4), min: Some(2), offset: 0 },
            other => unreachable!("{other:?} has no nibbles"),
        }
    }
}

/// The f16 at `block + offset`, as f32 in every lane.
pub fn f16_splat<'ctx>(cg: &Cg<'ctx>, block: PointerValue<'ctx>, offset: u64, lanes: u32) -> VectorValue<'ctx> {
    let bits = cg.load_ints(cg.byte_ptr(block, cg.int(offset)), cg.ctx.i16_type().vec_type(1));
    cg.splat(cg.extract(f16_to_f32(cg, bits), 0), lanes)
}

/// The bf16 at `block + offset`, as f32 in every lane.
pub fn bf16_splat<'ctx>(cg: &Cg<'ctx>, block: PointerValue<'ctx>, offset: u64, lanes: u32) -> VectorValue<'ctx> {
    let bits = cg.load_ints(cg.byte_ptr(block, cg.int(offset)), cg.ctx.i16_type().vec_type(1));
    cg.splat(cg.extract(bf16_to_f32(cg, bits), 0), lanes)
}

/// bf16 bits are the high half of an f32.
fn bf16_to_f32<'ctx>(cg: &Cg<'ctx>, bits: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let lanes = bits.get_type().get_size();
    let wide = ok!(cg.b.build_int_z_extend(bits, cg.i32.vec_type(lanes), ""));
    let sixteen = VectorType::const_vector(&vec![cg.i32.const_int(16, false); lanes as usize]);
    ok!(cg.b.build_bit_cast(ok!(cg.b.build_left_shift(wide, sixteen, "")), cg.vt(lanes), "")).into_vector_value()
}

/// f32 -> IEEE half, rounded to nearest even: a conversion instruction where the target has
/// F16C, else bit arithmetic (F. Giesen's float_to_half_fast3_rtne): overflow to infinity, NaN
/// stays NaN, subnormals rounded by one float addition.
pub fn f32_to_f16<'ctx>(cg: &Cg<'ctx>, x: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let lanes = x.get_type().get_size();
    let i16s = cg.ctx.i16_type().vec_type(lanes);
    if cg.has_feature("f16c") {
        let halves = ok!(cg.b.build_float_trunc(x, cg.ctx.f16_type().vec_type(lanes), ""));
        return ok!(cg.b.build_bit_cast(halves, i16s, "")).into_vector_value();
    }
    let c = |v: u64| VectorType::const_vector(&vec![cg.i32.const_int(v, false); lanes as usize]);
    let ge = |a, b| ok!(cg.b.build_int_compare(IntPredicate::UGE, a, b, ""));
    let select = |m, a: VectorValue<'ctx>, b: VectorValue<'ctx>| ok!(cg.b.build_select(m, a, b, "")).into_vector_value();
    let bits = ok!(cg.b.build_bit_cast(x, cg.i32.vec_type(lanes), "")).into_vector_value();
    let sign = ok!(cg.b.build_and(bits, c(0x8000_0000), ""));
    let f = ok!(cg.b.build_xor(bits, sign, ""));
    let special = select(ok!(cg.b.build_int_compare(IntPredicate::UGT, f, c(255 << 23), "")), c(0x7e00), c(0x7c00));
    // below 2^-14 the half is subnormal: one float addition of 0.5 (as the magic exponent says)
    // puts its 10 bits at the bottom of the float, rounded to nearest even
    let magic = c(((127 - 15) + (23 - 10) + 1) << 23);
    let as_f = |v: VectorValue<'ctx>| ok!(cg.b.build_bit_cast(v, cg.vt(lanes), "")).into_vector_value();
    let sum = ok!(cg.b.build_bit_cast(cg.fadd(as_f(f), as_f(magic)), cg.i32.vec_type(lanes), "")).into_vector_value();
    let subnormal = ok!(cg.b.build_int_sub(sum, magic, ""));
    let odd = ok!(cg.b.build_and(ok!(cg.b.build_right_shift(f, c(13), false, "")), c(1), ""));
    let rebased = ok!(cg.b.build_int_add(ok!(cg.b.build_int_add(f, c(((15u64.wrapping_sub(127)) << 23).wrapping_add(0xfff) & 0xffff_ffff), "")), odd, ""));
    let normal = ok!(cg.b.build_right_shift(rebased, c(13), false, ""));
    let finite = select(ge(f, c(113 << 23)), normal, subnormal);
    let h = select(ge(f, c((127 + 16) << 23)), special, finite);
    let h = ok!(cg.b.build_or(h, ok!(cg.b.build_right_shift(sign, c(16), false, "")), ""));
    ok!(cg.b.build_int_truncate(h, i16s, ""))
}

/// IEEE half -> f32: a conversion instruction where the target has F16C, else exact bit
/// arithmetic (kernels link without a runtime library to call).
pub fn f16_to_f32<'ctx>(cg: &Cg<'ctx>, bits: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let lanes = bits.get_type().get_size();
    if cg.has_feature("f16c") {
        let halves = ok!(cg.b.build_bit_cast(bits, cg.ctx.f16_type().vec_type(lanes), "")).into_vector_value();
        return ok!(cg.b.build_float_ext(halves, cg.vt(lanes), ""));
    }
    let c = |v: u64| VectorType::const_vector(&vec![cg.i32.const_int(v, false); lanes as usize]);
    let h = ok!(cg.b.build_int_z_extend(bits, cg.i32.vec_type(lanes), ""));
    let sign = ok!(cg.b.build_left_shift(ok!(cg.b.build_and(h, c(0x8000), "")), c(16), ""));
    let magnitude = ok!(cg.b.build_and(h, c(0x7fff), ""));
    // exponent and mantissa moved into place, then scaled by 2^(127-15): exact for normals and
    // subnormals alike
    let shifted = ok!(cg.b.build_left_shift(magnitude, c(13), ""));
    let scaled = cg.fmul(ok!(cg.b.build_bit_cast(shifted, cg.vt(lanes), "")).into_vector_value(), cg.splat_const(2f64.powi(112), lanes));
    let scaled_bits = ok!(cg.b.build_bit_cast(scaled, cg.i32.vec_type(lanes), "")).into_vector_value();
    // infinities and NaNs keep an all-ones exponent
    let special = ok!(cg.b.build_int_compare(inkwell::IntPredicate::UGE, magnitude, c(0x7c00), ""));
    let inf_nan = ok!(cg.b.build_or(shifted, c(0x7f80_0000), ""));
    let value = ok!(cg.b.build_select(special, inf_nan, scaled_bits, "")).into_vector_value();
    ok!(cg.b.build_bit_cast(ok!(cg.b.build_or(value, sign, "")), cg.vt(lanes), "")).into_vector_value()
}

/// `lanes` floats of type `t` at `at` (unaligned), as f32.
pub fn floats<'ctx>(cg: &Cg<'ctx>, t: crate::mlx::affine::ScaleType, at: PointerValue<'ctx>, lanes: u32) -> VectorValue<'ctx> {
    use crate::mlx::affine::ScaleType;
    match t {
        ScaleType::F32 => cg.load(at, cg.int(0), lanes),
        ScaleType::F16 => f16_to_f32(cg, cg.load_ints(at, cg.ctx.i16_type().vec_type(lanes))),
        ScaleType::BF16 => bf16_to_f32(cg, cg.load_ints(at, cg.ctx.i16_type().vec_type(lanes))),
    }
}
