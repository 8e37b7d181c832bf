//! Integer dot products (AVX512-VNNI `vpdpbusd`) for matmuls on Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
//! Q4_K, Q5_K and Q6_K weights and MLX's 4- and 8-bit affine groups, as llama.cpp does: each row's
//! activations are quantised once per tile to 8 bits per block of 32 (scale d_x = max|x| / 127,
//! q = round(x / d_x)), and the weights' integer quants meet them 64 products per instruction, no
//! dequantisation to f32.
//!
//! One step covers a pair of weight blocks (64 elements) in a 512-bit register of bytes. `vpdpbusd`
//! multiplies unsigned by signed bytes. Q4_x, Q5_x, Q4_K, Q5_K and MLX's groups: the weights'
//! quants (0..15, 0..31 with the fifth bit set in, or 0..255) are the unsigned side and the
//! activations the signed one; offsets (q − 8, q − 16), minimums and MLX's bias become one more
//! term per block, (−8·d_w, −16·d_w, m_w, −dmin·m or bias) · d_x · Σq_x. Q8_0 and Q6_K (q − 32, a
//! scale per 16 elements, so per lane): activations are stored as q + 128 (unsigned) against the
//! signed weights, and the 128 · Σw this adds is taken out by starting the accumulator at
//! −128 · Σw (per lane, once per weight step for every row of the tile). Each i32 lane then holds
//! an exact Σ of 4 products of one block; it becomes f32, is scaled by d_w · d_x of its lane and
//! accumulated in f32 lanes summed at the end.
//!
//! Byte order within a step matches the weights': Q8_0, MLX 8-bit, Q4_K/Q5_K/Q6_K in element order
//! (block b in lanes 0–7, b + 1 in 8–15); Q4_x nibbles as they unpack — [b low, b+1 low, b high,
//! b+1 high], 16 bytes each, so block b owns lanes 0–3 and 8–11 (Q5_x the same, fifth bits added);
//! MLX 4-bit (element i in byte i / 2, even ones low) as it unpacks — the 32 even elements, then the
//! 32 odd ones — which gives block b the same lanes. Per-lane scales (`dxe`) and sums (`sxe`)
//! follow the same map.
use inkwell::types::VectorType;
use inkwell::values::{IntValue, PointerValue, VectorValue};

use super::codegen::{ok, Cg};
use super::weight_format::{self, f16_splat, WeightFormat};

/// Elements per step: two blocks of 32.
pub const STEP: u64 = 64;

/// Whether a matmul on `format` with rows of `k` can run on integer dot products on a target
/// with `features` (LLVM names).
pub fn supports(features: &[String], format: WeightFormat, k: usize) -> bool {
    let has = |f: &str| features.iter().any(|x| x == f);
    let known = match format {
        WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q4_1 | WeightFormat::Q5_0 | WeightFormat::Q5_1 | WeightFormat::Q4_K | WeightFormat::Q5_K | WeightFormat::Q6_K => true,
        WeightFormat::Affine(a) => a.bits == 4 || a.bits == 8,
        _ => false,
    };
    known && (k as u64).is_multiple_of(STEP) && has("avx512vnni") && has("avx512bw")
}

/// Bytes of a step in element order (Q8_0, MLX 8-bit; Q4_K and Q5_K, whose two sub-blocks are a
/// byte's low and high nibbles), rather than interleaved as Q4_x nibbles unpack.
fn natural(format: WeightFormat) -> bool {
    matches!(format, WeightFormat::Q8_0 | WeightFormat::Q4_K | WeightFormat::Q5_K | WeightFormat::Q6_K) || matches!(format, WeightFormat::Affine(a) if a.bits == 8)
}

/// Signed weight quants (Q8_0; Q6_K's q − 32): activations stored as q + 128 against them.
fn signed(format: WeightFormat) -> bool {
    matches!(format, WeightFormat::Q8_0 | WeightFormat::Q6_K)
}

/// The accumulator start that takes out what +128-biased activations add: −128 · Σw per lane.
fn unbias<'ctx>(cg: &Cg<'ctx>, bytes: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let bias = VectorType::const_vector(&vec![cg.ctx.i8_type().const_int(128, false); 64]);
    ok!(cg.b.build_int_sub(cg.splat_i32(0, 16), cg.dpbusd(cg.splat_i32(0, 16), bias, bytes), ""))
}

/// Whether lane `l` (of 16) holds the step's second block.
fn second_block(format: WeightFormat, l: u32) -> bool {
    if natural(format) { l >= 8 } else { (l / 4) % 2 == 1 }
}

/// Where element `e` (0..32) of block `j` (0, 1) sits in the step's 64 bytes.
fn byte_of(format: WeightFormat, j: u64, e: u64) -> u64 {
    match format {
        _ if natural(format) => 32 * j + e,
        WeightFormat::Affine(_) => {
            let i = 32 * j + e;
            if i % 2 == 0 { i / 2 } else { 32 + i / 2 }
        }
        _ => 32 * (e / 16) + 16 * j + e % 16,
    }
}

/// A row's quantised activations: bytes [K] (q, or q + 128 against Q8_0; in step order), per-lane
/// scales and per-lane sums [K / 64][16] f32.
pub struct Quantised<'ctx> {
    pub q: PointerValue<'ctx>,
    pub dxe: PointerValue<'ctx>,
    pub sxe: PointerValue<'ctx>,
}

/// 16 lanes of `a` where the lane holds the step's first block, else `b`.
fn by_block<'ctx>(cg: &Cg<'ctx>, format: WeightFormat, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let mask: Vec<_> = (0..16).map(|l| cg.ctx.bool_type().const_int(second_block(format, l) as u64, false)).collect();
    ok!(cg.b.build_select(VectorType::const_vector(&mask), b, a, "")).into_vector_value()
}

/// a's lanes, then b's.
fn concat<'ctx>(cg: &Cg<'ctx>, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let n = a.get_type().get_size();
    let idx: Vec<_> = (0..2 * n).map(|i| cg.i32.const_int(i as u64, false)).collect();
    ok!(cg.b.build_shuffle_vector(a, b, VectorType::const_vector(&idx), ""))
}

/// Quantises x [K] f32 into `out` (row `r` of the tile's buffers).
pub fn quantise_row<'ctx>(cg: &Cg<'ctx>, format: WeightFormat, x: PointerValue<'ctx>, k: u64, out: &Quantised<'ctx>) {
    let i8s = cg.ctx.i8_type();
    // the step's 64 quantised elements (in element order) moved to their bytes (byte_of)
    let mut order = vec![0u64; STEP as usize];
    for i in 0..STEP {
        order[byte_of(format, i / 32, i % 32) as usize] = i;
    }
    let order = VectorType::const_vector(&order.iter().map(|&i| cg.i32.const_int(i, false)).collect::<Vec<_>>());
    cg.for_each(cg.int(0), cg.int(k), STEP, &mut |cg, k0| {
        let mut d = vec![];
        let mut s = vec![];
        let mut bytes = vec![];
        for j in 0..2u64 {
            let at = cg.add(k0, cg.int(32 * j));
            let v = [cg.load(x, at, 16), cg.load(x, cg.add(at, cg.int(16)), 16)];
            let abs = |v: VectorValue<'ctx>| cg.fmax(v, cg.fsub(cg.splat_const(0.0, 16), v));
            let amax = cg.hmax(cg.fmax(abs(v[0]), abs(v[1])));
            let dj = ok!(cg.b.build_float_div(amax, cg.f32.const_float(127.0), ""));
            let zero = ok!(cg.b.build_float_compare(inkwell::FloatPredicate::OEQ, amax, cg.f32.const_zero(), ""));
            let inv = cg.select(zero, cg.f32.const_zero(), ok!(cg.b.build_float_div(cg.f32.const_float(127.0), amax, "")));
            let mut sum = cg.i32.const_zero();
            for v in v {
                let q = cg.round_to_i32(cg.fmul(v, cg.splat(inv, 16))); // in -127..=127
                sum = ok!(cg.b.build_int_add(sum, cg.reduce_add(q), ""));
                let bias = if signed(format) { 128 } else { 0 };
                bytes.push(ok!(cg.b.build_int_truncate(ok!(cg.b.build_int_add(q, cg.splat_i32(bias, 16), "")), i8s.vec_type(16), "")));
            }
            d.push(cg.splat(dj, 16));
            // Σq_x · d_x, spread over the 8 lanes of the block
            let sf = ok!(cg.b.build_signed_int_to_float(sum, cg.f32, ""));
            s.push(cg.splat(ok!(cg.b.build_float_mul(ok!(cg.b.build_float_mul(sf, dj, "")), cg.f32.const_float(0.125), "")), 16));
        }
        let (a, b) = (concat(cg, bytes[0], bytes[1]), concat(cg, bytes[2], bytes[3]));
        let step = ok!(cg.b.build_shuffle_vector(concat(cg, a, b), i8s.vec_type(64).get_undef(), order, ""));
        cg.store_ints(cg.byte_ptr(out.q, k0), step);
        let lane = ok!(cg.b.build_right_shift(k0, cg.int(2), false, "")); // 16 lanes per 64 elements
        cg.store(out.dxe, lane, by_block(cg, format, d[0], d[1]));
        cg.store(out.sxe, lane, by_block(cg, format, s[0], s[1]));
    });
}

/// One column's weights for the step at k0: bytes (Q8_0 signed, Q4_x unsigned nibbles), the
/// accumulator start (Q8_0: −128·Σw, else 0), per-lane d_w, and the per-lane factor of d_x·Σq_x
/// (Q4_0: −8·d_w, Q4_1: m_w).
pub struct Weights<'ctx> {
    pub bytes: VectorValue<'ctx>,
    pub start: VectorValue<'ctx>,
    pub d: VectorValue<'ctx>,
    pub sum_factor: Option<VectorValue<'ctx>>,
}

pub fn load_weights<'ctx>(cg: &Cg<'ctx>, format: WeightFormat, row: PointerValue<'ctx>, k0: IntValue<'ctx>) -> Weights<'ctx> {
    if let WeightFormat::Affine(a) = format {
        return affine_weights(cg, format, a, row, k0);
    }
    if matches!(format, WeightFormat::Q4_K | WeightFormat::Q5_K) {
        return k4_weights(cg, format, row, k0);
    }
    if format == WeightFormat::Q6_K {
        return q6_k_weights(cg, row, k0);
    }
    let block_bytes = format.row_bytes(32);
    let first = cg.byte_ptr(row, cg.mul(ok!(cg.b.build_right_shift(k0, cg.int(5), false, "")), cg.int(block_bytes)));
    let blocks = [first, cg.byte_ptr(first, cg.int(block_bytes))];
    let i8s = cg.ctx.i8_type();
    let concat = |a, b| concat(cg, a, b);
    let half = |b: PointerValue<'ctx>, off: u64| f16_splat(cg, b, off, 16);
    let d = by_block(cg, format, half(blocks[0], 0), half(blocks[1], 0));
    if format == WeightFormat::Q8_0 {
        let [a, b] = blocks.map(|p| cg.load_ints(cg.byte_ptr(p, cg.int(2)), i8s.vec_type(32)));
        let bytes = concat(a, b);
        return Weights { bytes, start: unbias(cg, bytes), d, sum_factor: None };
    }
    // (bytes of the nibbles, of the u32 of fifth bits; offset of the signed quants)
    let (qs, qh, offset) = match format {
        WeightFormat::Q4_0 => (2, None, 8.0),
        WeightFormat::Q4_1 => (4, None, 0.0),
        WeightFormat::Q5_0 => (6, Some(2), 16.0),
        _ => (8, Some(4), 0.0),
    };
    let [a, b] = blocks.map(|p| cg.load_ints(cg.byte_ptr(p, cg.int(qs)), i8s.vec_type(16)));
    let packed = concat(a, b); // 32 bytes: b's then b+1's
    let splat8 = |v: u64, n: u32| VectorType::const_vector(&vec![i8s.const_int(v, false); n as usize]);
    let low = ok!(cg.b.build_and(packed, splat8(15, 32), ""));
    let high = ok!(cg.b.build_right_shift(packed, splat8(4, 32), false, ""));
    let mut bytes = concat(low, high);
    if let Some(qh) = qh {
        // element e of block j takes bit e of its block's u32 as its fifth bit (16): each byte
        // picks byte e / 8 of the two u32s and tests bit e % 8
        let [h0, h1] = blocks.map(|p| cg.load_ints(cg.byte_ptr(p, cg.int(qh)), i8s.vec_type(4)));
        let (mut pick, mut bit) = (vec![0u64; 64], vec![0u64; 64]);
        for j in 0..2 {
            for e in 0..32 {
                let p = byte_of(format, j, e) as usize;
                (pick[p], bit[p]) = (4 * j + e / 8, 1 << (e % 8));
            }
        }
        let consts = |v: &[u64], ty: inkwell::types::IntType<'ctx>| VectorType::const_vector(&v.iter().map(|&x| ty.const_int(x, false)).collect::<Vec<_>>());
        let spread = ok!(cg.b.build_shuffle_vector(concat(h0, h1), i8s.vec_type(8).get_undef(), consts(&pick, cg.i32), ""));
        let set = ok!(cg.b.build_int_compare(inkwell::IntPredicate::NE, ok!(cg.b.build_and(spread, consts(&bit, i8s), "")), i8s.vec_type(64).const_zero(), ""));
        bytes = ok!(cg.b.build_select(set, ok!(cg.b.build_or(bytes, splat8(16, 64), "")), bytes, "")).into_vector_value();
    }
    let sum_factor = match format {
        WeightFormat::Q4_0 | WeightFormat::Q5_0 => cg.fmul(d, cg.splat_const(-offset, 16)),
        _ => by_block(cg, format, half(blocks[0], 2), half(blocks[1], 2)),
    };
    Weights { bytes, start: cg.splat_i32(0, 16), d, sum_factor: Some(sum_factor) }
}

/// MLX 4- or 8-bit groups: each block's quants from its group (32 elements at its offset in the
/// group), that group's scale as d_w and bias as the Σq_x factor.
fn affine_weights<'ctx>(cg: &Cg<'ctx>, format: WeightFormat, a: crate::mlx::affine::Affine, row: PointerValue<'ctx>, k0: IntValue<'ctx>) -> Weights<'ctx> {
    let (group, s, bits) = (a.group as u64, a.scale.bytes() as u64, a.bits as u64);
    let shr = |v: IntValue<'ctx>, n: u64| ok!(cg.b.build_right_shift(v, cg.int(n), false, ""));
    let blocks = [0, 1].map(|j| {
        let e = cg.add(k0, cg.int(32 * j));
        let at = cg.byte_ptr(row, cg.mul(shr(e, group.trailing_zeros() as u64), cg.int(a.block_bytes() as u64)));
        let within = ok!(cg.b.build_and(e, cg.int(group - 1), ""));
        (at, cg.byte_ptr(at, cg.add(cg.int(2 * s), shr(cg.mul(within, cg.int(bits)), 3))))
    });
    let scalar = |at: PointerValue<'ctx>, offset: u64| super::affine::splat_scale(cg, a.scale, at, offset, 16);
    let d = by_block(cg, format, scalar(blocks[0].0, 0), scalar(blocks[1].0, 0));
    let sum_factor = by_block(cg, format, scalar(blocks[0].0, s), scalar(blocks[1].0, s));
    let i8s = cg.ctx.i8_type();
    let [q0, q1] = blocks.map(|(_, q)| cg.load_ints(q, i8s.vec_type(4 * bits as u32)));
    let packed = concat(cg, q0, q1);
    let bytes = if bits == 8 {
        packed
    } else {
        let splat8 = |v: u64| VectorType::const_vector(&vec![i8s.const_int(v, false); 32]);
        concat(cg, ok!(cg.b.build_and(packed, splat8(15), "")), ok!(cg.b.build_right_shift(packed, splat8(4), false, "")))
    };
    Weights { bytes, start: cg.splat_i32(0, 16), d, sum_factor: Some(sum_factor) }
}

/// Q4_K / Q5_K: step i (of 4) of a super-block is sub-blocks 2i and 2i + 1, the low and high
/// nibbles of qs[32i ..] (Q5_K's fifth bits: bits 2i and 2i + 1 of qh[l]); each sub-block's d·scale
/// is its d_w and −dmin·min its Σq_x factor.
fn k4_weights<'ctx>(cg: &Cg<'ctx>, format: WeightFormat, row: PointerValue<'ctx>, k0: IntValue<'ctx>) -> Weights<'ctx> {
    let fifth = format == WeightFormat::Q5_K;
    let shr = |v: IntValue<'ctx>, n: u64| ok!(cg.b.build_right_shift(v, cg.int(n), false, ""));
    let block = cg.byte_ptr(row, cg.mul(shr(k0, 8), cg.int(format.row_bytes(256))));
    let i = ok!(cg.b.build_and(shr(k0, 6), cg.int(3), ""));
    let i8s = cg.ctx.i8_type();
    let packed = cg.load_ints(cg.byte_ptr(block, cg.add(cg.int(if fifth { 48 } else { 16 }), cg.mul(i, cg.int(32)))), i8s.vec_type(32));
    let splat8 = |v: IntValue<'ctx>| {
        let one = ok!(cg.b.build_insert_element(i8s.vec_type(32).get_undef(), v, cg.int(0), ""));
        ok!(cg.b.build_shuffle_vector(one, i8s.vec_type(32).get_undef(), cg.i32.vec_type(32).const_zero(), ""))
    };
    let byte = |v: u64| i8s.const_int(v, false);
    let low = ok!(cg.b.build_and(packed, splat8(byte(15)), ""));
    let high = ok!(cg.b.build_right_shift(packed, splat8(byte(4)), false, ""));
    let mut bytes = concat(cg, low, high);
    let t = |j: u64| ok!(cg.b.build_int_add(ok!(cg.b.build_int_truncate(cg.mul(i, cg.int(2)), cg.i32, "")), cg.i32.const_int(j, false), ""));
    if fifth {
        let qh = cg.load_ints(cg.byte_ptr(block, cg.int(16)), i8s.vec_type(32));
        let bit = |j: u64| {
            let shift = splat8(ok!(cg.b.build_int_truncate(t(j), i8s, "")));
            let b = ok!(cg.b.build_and(ok!(cg.b.build_right_shift(qh, shift, false, "")), splat8(byte(1)), ""));
            ok!(cg.b.build_left_shift(b, splat8(byte(4)), ""))
        };
        bytes = ok!(cg.b.build_or(bytes, concat(cg, bit(0), bit(1)), ""));
    }
    let [(s0, m0), (s1, m1)] = [0, 1].map(|j| weight_format::k4_scale_min(cg, block, t(j), 16));
    let negate = |m: VectorValue<'ctx>| cg.fmul(m, cg.splat_const(-1.0, 16));
    Weights { bytes, start: cg.splat_i32(0, 16), d: by_block(cg, format, s0, s1), sum_factor: Some(by_block(cg, format, negate(m0), negate(m1))) }
}

/// Q6_K: step i (of 4) of a super-block is half h = i / 2, 32-element parts 2(i % 2) and
/// 2(i % 2) + 1 of it: low 4 bits from nibble i % 2 of ql[64h ..][64], high 2 bits from qh[32h + l]
/// at bits 2k; q − 32 signed. Each 16 elements have their own scale, so each lane (4 elements)
/// its own d_w = d · sc[8h + 2k_a + lane / 4].
fn q6_k_weights<'ctx>(cg: &Cg<'ctx>, row: PointerValue<'ctx>, k0: IntValue<'ctx>) -> Weights<'ctx> {
    let shr = |v: IntValue<'ctx>, n: u64| ok!(cg.b.build_right_shift(v, cg.int(n), false, ""));
    let block = cg.byte_ptr(row, cg.mul(shr(k0, 8), cg.int(WeightFormat::Q6_K.row_bytes(256))));
    let i = ok!(cg.b.build_and(shr(k0, 6), cg.int(3), ""));
    let (h, odd) = (shr(i, 1), ok!(cg.b.build_and(i, cg.int(1), "")));
    let i8s = cg.ctx.i8_type();
    let splat8 = |v: IntValue<'ctx>, n: u32| {
        let v = if v.get_type().get_bit_width() == 8 { v } else { ok!(cg.b.build_int_truncate(v, i8s, "")) };
        let one = ok!(cg.b.build_insert_element(i8s.vec_type(n).get_undef(), v, cg.int(0), ""));
        ok!(cg.b.build_shuffle_vector(one, i8s.vec_type(n).get_undef(), cg.i32.vec_type(n).const_zero(), ""))
    };
    let byte = |v: u64| i8s.const_int(v, false);
    let ql = cg.load_ints(cg.byte_ptr(block, cg.mul(h, cg.int(64))), i8s.vec_type(64));
    let low = ok!(cg.b.build_and(ok!(cg.b.build_right_shift(ql, splat8(cg.mul(odd, cg.int(4)), 64), false, "")), splat8(byte(15), 64), ""));
    let qh = cg.load_ints(cg.byte_ptr(block, cg.add(cg.int(128), cg.mul(h, cg.int(32)))), i8s.vec_type(32));
    let k_a = cg.mul(odd, cg.int(2));
    let high = |j: u64| {
        let shift = splat8(cg.mul(cg.add(k_a, cg.int(j)), cg.int(2)), 32);
        ok!(cg.b.build_and(ok!(cg.b.build_right_shift(qh, shift, false, "")), splat8(byte(3), 32), ""))
    };
    let high = ok!(cg.b.build_left_shift(concat(cg, high(0), high(1)), splat8(byte(4), 64), ""));
    let bytes = ok!(cg.b.build_int_sub(ok!(cg.b.build_or(low, high, "")), splat8(byte(32), 64), ""));
    // the 4 scales of this step's 16-element pieces, one per 4 lanes
    let sc = cg.load_ints(cg.byte_ptr(block, cg.add(cg.int(192), cg.add(cg.mul(h, cg.int(8)), cg.mul(k_a, cg.int(2))))), i8s.vec_type(4));
    let sc = ok!(cg.b.build_signed_int_to_float(sc, cg.vt(4), ""));
    let spread = VectorType::const_vector(&(0..16).map(|l| cg.i32.const_int(l / 4, false)).collect::<Vec<_>>());
    let sc = ok!(cg.b.build_shuffle_vector(sc, cg.vt(4).get_undef(), spread, ""));
    Weights { bytes, start: unbias(cg, bytes), d: cg.fmul(f16_splat(cg, block, 208, 16), sc), sum_factor: None }
}

/// acc + this step's products of one quantised row (its bytes at `q`, lane scales at `lane`) with
/// one column's weights.
pub fn accumulate<'ctx>(cg: &Cg<'ctx>, acc: VectorValue<'ctx>, w: &Weights<'ctx>, x: &Quantised<'ctx>, k0: IntValue<'ctx>) -> VectorValue<'ctx> {
    let xq = cg.load_ints(cg.byte_ptr(x.q, k0), cg.ctx.i8_type().vec_type(64));
    // exact Σ q_x · q_w per lane
    let dot = if w.sum_factor.is_some() { cg.dpbusd(w.start, w.bytes, xq) } else { cg.dpbusd(w.start, xq, w.bytes) };
    let lane = ok!(cg.b.build_right_shift(k0, cg.int(2), false, ""));
    let scale = cg.fmul(w.d, cg.load(x.dxe, lane, 16));
    let acc = cg.fma(ok!(cg.b.build_signed_int_to_float(dot, cg.vt(16), "")), scale, acc);
    match w.sum_factor {
        Some(f) => cg.fma(f, cg.load(x.sxe, lane, 16), acc),
        None => acc,
    }
}
