//! Matmuls on dot-product instructions over weights repacked 16 columns at a time (repack.rs):
//! AVX512-VNNI `vpdpbusd` (or, on AVX2 machines, `vpmaddubsw` + `vpmaddwd`: `Steps`) for Q8_0,
//! Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K and MLX's 4-, 5-, 6- and 8-bit groups; AVX512-BF16
//! `vdpbf16ps` (or, on AVX2, FMAs on both widened to f32) for BF16 weights, whose activations are
//! rounded to bf16 (to nearest even) once per row and meet 2 elements of 16 columns per instruction.
//!
//! As llama.cpp does, each activation row is quantised once to 8 bits per block of 32 (d_x =
//! max|x| / 127, q_x = round(x / d_x)); with x_w = scale·q_w + min per unit of the weights,
//!   Σ x·x_w = Σ_units scale · d_x · Σ q_x·q_w  +  min · d_x · Σ q_x.
//! The weights' quants are unsigned and the activations signed, so one `vpdpbusd` adds, in each
//! of 16 lanes (16 columns), 4 products of a 4-element step: a column's weights against the row's
//! 4 activation bytes broadcast to every lane. The exact i32 sum of a unit (or of a 32-element
//! block of an MLX group) becomes f32 once, times scale·d_x, plus min·(d_x·Σq_x), in f32 lanes
//! that are the 16 columns' outputs: the epilogue runs on them as vectors.
//!
//! Loops: rows in chunks whose quantised activations fit the stack (the fused prologue, then
//! quantisation, once per row); within a chunk, blocks of 2 column groups, and in each, tiles of
//! 4 rows: every weight step loaded is used by 4 rows and every broadcast by 2 groups (AVX2, with
//! half the registers: 1 group; `tile_shape`).
use inkwell::types::VectorType;
use inkwell::values::{BasicValueEnum, FastMathFlags, FloatValue, IntValue, PointerValue, VectorValue};

use super::amx;
use super::codegen::{ok, Cg};
use super::expr::{eval, At};
use super::kernel::KExpr;
use super::matmul::prologue_row;
use super::weight_format::{floats, WeightFormat};
use crate::mlx::affine::ScaleType;
use crate::repack::{Min, Packing, Scale, COLS};

/// Rows of a tile and column groups of a block: as many as the registers hold (32 with
/// AVX-512, 16 with AVX2). On AVX2, tiles take 4 rows of one group: int8 (i16 pair sums and f32
/// sums for each; LLVM keeps the rest close), prefill of 512 tokens on a Zen 3 machine, Q4_0
/// 1.13×, Q8_0 1.08×, Qwen2.5 Q4_K_M 1.20× over 2 rows, Q4_1 the same; widened BF16 with one
/// sum per row (`tile_dot_bf16`), 1.09–1.18× over 2 rows of two sums (3 sittings), decode the same.
fn tile_shape(cg: &Cg) -> (u64, u64) {
    if cg.lanes >= 16 { (4, 2) } else { (4, 1) }
}
/// How far ahead of a column group's super-block its weights are asked for (`prefetcht0`, a
/// line at a time): decode on a Zen 3 machine 1.10× with 512 (256: 1.07×, 1024: 1.09×, 2048:
/// 0.96×; medians of 8 interleaved).
const PREFETCH_BYTES: u64 = 512;
/// Quantised activation bytes a row chunk may hold on the stack.
const CHUNK_BYTES: u64 = 256 * 1024;

/// Whether a matmul on `format` with rows of `k` runs on dot-product instructions on a target
/// with `features` (LLVM names).
pub fn supports(features: &[String], format: WeightFormat, k: usize) -> bool {
    let has = |f: &str| features.iter().any(|x| x == f);
    match format {
        WeightFormat::BF16 => (native_bf16(features) || has("avx2") && has("fma")) && k.is_multiple_of(BF16_STEP as usize),
        _ => (vnni(features) || has("avx2")) && Packing::of(format).is_some_and(|p| p.fits(k)),
    }
}

/// Whether 8-bit steps run on `vpdpbusd` (AVX512-VNNI); else (AVX2) on `vpmaddubsw` (`Steps`).
fn vnni(features: &[String]) -> bool {
    ["avx512vnni", "avx512bw"].iter().all(|f| features.iter().any(|x| x == f))
}

/// Elements of a bf16 loop step (16 instructions of 2).
const BF16_STEP: u64 = 32;

/// Whether BF16 weights meet bf16 activations in `vdpbf16ps` (AVX512-BF16); else (AVX2) both
/// are widened to f32 (exactly) and meet in FMAs, one per element.
fn native_bf16(features: &[String]) -> bool {
    ["avx512bf16", "avx512bw"].iter().all(|f| features.iter().any(|x| x == f))
}

/// A chunk's quantised rows: bytes [rows, K], d_x [rows, K / 32], d_x·Σq_x [rows, K / g] per
/// g = min(unit, 32) elements.
struct Quantised<'ctx> {
    q: PointerValue<'ctx>,
    dx: PointerValue<'ctx>,
    sx: PointerValue<'ctx>,
}

#[allow(clippy::too_many_arguments)]
pub fn emit<'ctx>(cg: &mut Cg<'ctx>, name: &str, k: usize, n: usize, inputs: usize, input: &KExpr, epilogue: &KExpr, format: WeightFormat) {
    let p = Packing::of(format);
    let ka = cg.kernel(name);
    let ptrs: Vec<PointerValue<'ctx>> = (0..=inputs).map(|i| cg.arg(&ka, i)).collect();
    let (w, out) = (ptrs[0], cg.arg(&ka, inputs + 1));
    let (k, n) = (k as u64, n as u64);
    let g = p.map_or(32, |p| p.unit.min(32) as u64);
    let widen = p.is_none() && !native_bf16(&cg.features);
    let x_bytes = if p.is_some() { 1 } else if widen { 4 } else { 2 }; // per activation: i8, bf16 or bf16 as f32
    let (tb, cgs) = tile_shape(cg);
    let chunk = (CHUNK_BYTES / (x_bytes * k)).clamp(tb, 128) / tb * tb;
    let xs = ok!(cg.b.build_array_alloca(cg.f32, cg.int(k), "xs")); // [K]
    let x = Quantised {
        q: ok!(cg.b.build_array_alloca(cg.i32, cg.int(chunk * k * x_bytes / 4), "xq")), // [chunk, K] i8, bf16 or f32
        dx: ok!(cg.b.build_array_alloca(cg.f32, cg.int(chunk * k / 32), "dx")), // [chunk, K / 32]
        sx: ok!(cg.b.build_array_alloca(cg.f32, cg.int(chunk * k / g), "sx")), // [chunk, K / g]
    };
    let chunks = |cg: &Cg<'ctx>, c0: IntValue<'ctx>, rows: IntValue<'ctx>| {
        cg.for_each(cg.int(0), rows, 1, &mut |cg, r| {
            prologue_row(cg, input, &ptrs, cg.add(c0, r), k, xs);
            match p {
                Some(_) => quantise_row(cg, xs, k, g, &x, r),
                None => bf16_row(cg, xs, k, x.q, widen, &|cg, e| cg.mul(cg.add(cg.mul(r, cg.int(k)), e), cg.int(x_bytes))), // [rows, K]
            }
        });
        let tile = |cg: &Cg<'ctx>, n0: IntValue<'ctx>, groups: u64, r0: IntValue<'ctx>, tb: u64| {
            let acc = match &p {
                Some(p) => tile_dot(cg, p, w, k, g, &x, n0, groups, r0, tb),
                None => tile_dot_bf16(cg, w, k, x.q, n0, groups, r0, tb, widen),
            };
            for r in 0..tb {
                for c in 0..groups {
                    let t = cg.add(c0, cg.add(r0, cg.int(r)));
                    store(cg, epilogue, &ptrs, out, n, t, cg.add(n0, cg.int(COLS as u64 * c)), ka.end, acc[(r * groups + c) as usize]);
                }
            }
        };
        let block = |cg: &Cg<'ctx>, n0: IntValue<'ctx>, groups: u64| {
            let rest = cg.for_each(cg.int(0), rows, tb, &mut |cg, r0| tile(cg, n0, groups, r0, tb));
            cg.for_each(rest, rows, 1, &mut |cg, r0| tile(cg, n0, groups, r0, 1));
        };
        let rest = cg.for_each(ka.begin, ka.end, cgs * COLS as u64, &mut |cg, n0| block(cg, n0, cgs));
        // single groups, the last one possibly partial: n0 + 16 <= end + 15 while n0 < end
        let past = cg.add(ka.end, cg.int(COLS as u64 - 1));
        cg.for_each(rest, past, COLS as u64, &mut |cg, n0| block(cg, n0, 1));
    };
    let first = if amx::supports(&cg.features, format, k as usize) { amx::emit(cg, &ka, &ptrs, out, k, n, input, epilogue, p, xs) } else { cg.int(0) };
    // the other rows in chunks of `chunk`, the last one shorter: c0 + chunk <= rows + chunk - 1 while c0 < rows
    let past = cg.add(ka.rows, cg.int(chunk - 1));
    cg.for_each(first, past, chunk, &mut |cg, c0| chunks(cg, c0, cg.min(cg.int(chunk), ok!(cg.b.build_int_sub(ka.rows, c0, "")))));
    cg.ret();
}

/// Quantises x [K] f32 into row `r` of the chunk's buffers.
fn quantise_row<'ctx>(cg: &Cg<'ctx>, xs: PointerValue<'ctx>, k: u64, g: u64, x: &Quantised<'ctx>, r: IntValue<'ctx>) {
    let i8s = cg.ctx.i8_type();
    cg.for_each(cg.int(0), cg.int(k), 32, &mut |cg, e| {
        let (d, qs) = q8_block(cg, [cg.load(xs, e, 16), cg.load(xs, cg.add(e, cg.int(16)), 16)]);
        for (h, &q) in qs.iter().enumerate() {
            cg.store_ints(cg.byte_ptr(x.q, cg.add(cg.mul(r, cg.int(k)), cg.add(e, cg.int(16 * h as u64)))), ok!(cg.b.build_int_truncate(q, i8s.vec_type(16), "")));
        }
        cg.store(x.dx, row_index(cg, r, k, 32, e), cg.splat(d, 1));
        // d_x · Σq_x of each g elements (the sum exact in integers)
        let scaled = |cg: &Cg<'ctx>, q: VectorValue<'ctx>| cg.splat(ok!(cg.b.build_float_mul(ok!(cg.b.build_signed_int_to_float(cg.reduce_add(q), cg.f32, "")), d, "")), 1);
        if g == 16 {
            cg.store(x.sx, row_index(cg, r, k, 16, e), scaled(cg, qs[0]));
            cg.store(x.sx, cg.add(row_index(cg, r, k, 16, e), cg.int(1)), scaled(cg, qs[1]));
        } else {
            cg.store(x.sx, row_index(cg, r, k, 32, e), scaled(cg, ok!(cg.b.build_int_add(qs[0], qs[1], ""))));
        }
    });
}

/// Rounds x [K] f32 to bf16 (to nearest even), 16 at a time to xq + `at(e)` bytes: as bf16, or
/// (`widen`) as the f32 of that bf16.
pub(super) fn bf16_row<'ctx>(cg: &Cg<'ctx>, xs: PointerValue<'ctx>, k: u64, xq: PointerValue<'ctx>, widen: bool, at: &dyn Fn(&Cg<'ctx>, IntValue<'ctx>) -> IntValue<'ctx>) {
    let (i32s, c) = (cg.i32.vec_type(16), |v: u64| cg.splat_i32(v, 16));
    cg.for_each(cg.int(0), cg.int(k), 16, &mut |cg, e| {
        let bits = ok!(cg.b.build_bit_cast(cg.load(xs, e, 16), i32s, "")).into_vector_value();
        let odd = ok!(cg.b.build_and(ok!(cg.b.build_right_shift(bits, c(16), false, "")), c(1), ""));
        let rounded = ok!(cg.b.build_right_shift(ok!(cg.b.build_int_add(bits, ok!(cg.b.build_int_add(odd, c(0x7fff), "")), "")), c(16), false, ""));
        let value = match widen {
            true => ok!(cg.b.build_left_shift(rounded, c(16), "")),
            false => ok!(cg.b.build_int_truncate(rounded, cg.ctx.i16_type().vec_type(16), "")),
        };
        cg.store_ints(cg.byte_ptr(xq, at(cg, e)), value);
    });
}

/// The f32 sums [tb][groups] of rows r0.. (bf16 in xq, or their f32 with `widen`) against packed
/// BF16 column groups from n0: per pair of elements, one `vdpbf16ps` per row and group; widened,
/// the pair's two weights as f32 (a shift, a mask) and one FMA each, into one sum per row — or,
/// for a tile of one row, separate sums for a pair's first and second elements (two dependent
/// FMAs per step would wait on each other).
#[allow(clippy::too_many_arguments)]
fn tile_dot_bf16<'ctx>(cg: &Cg<'ctx>, w: PointerValue<'ctx>, k: u64, xq: PointerValue<'ctx>, n0: IntValue<'ctx>, groups: u64, r0: IntValue<'ctx>, tb: u64, widen: bool) -> Vec<VectorValue<'ctx>> {
    let bases: Vec<_> = (0..groups).map(|c| cg.byte_ptr(w, cg.mul(cg.add(n0, cg.int(COLS as u64 * c)), cg.int(2 * k)))).collect();
    let sums = if widen && tb == 1 { 2 } else { 1 }; // per row and group
    let init: Vec<BasicValueEnum> = (0..tb * groups * sums).map(|_| cg.vt(16).const_zero().into()).collect();
    let words = cg.i32.vec_type(16);
    let acc = cg.for_carry(cg.int(0), cg.int(k), BF16_STEP, init, &mut |cg, e0, acc| {
        let mut acc: Vec<VectorValue> = acc.into_iter().map(|a| a.into_vector_value()).collect();
        for s in 0..BF16_STEP / 2 {
            let e = cg.add(e0, cg.int(2 * s)); // this pair's first element
            let wv: Vec<_> = bases.iter().map(|&b| cg.load_ints(cg.byte_ptr(b, cg.mul(e, cg.int(32))), cg.ctx.i8_type().vec_type(64))).collect();
            // widened: each column's pair as f32 (first, second)
            let as_f32 = |v| ok!(cg.b.build_bit_cast(v, cg.vt(16), "")).into_vector_value();
            let wf: Vec<[VectorValue; 2]> = match widen {
                true => wv.iter().map(|&w| {
                    let w = ok!(cg.b.build_bit_cast(w, words, "")).into_vector_value();
                    [as_f32(ok!(cg.b.build_left_shift(w, cg.splat_i32(16, 16), ""))), as_f32(ok!(cg.b.build_and(w, cg.splat_i32(0xffff_0000, 16), "")))]
                }).collect(),
                false => vec![],
            };
            for r in 0..tb {
                let row = cg.add(r0, cg.int(r));
                for c in 0..groups as usize {
                    let i = (r as usize * groups as usize + c) * sums as usize;
                    if widen {
                        for (half, &wh) in wf[c].iter().enumerate() {
                            let x = cg.splat(cg.load_f32(xq, cg.add(cg.mul(row, cg.int(k)), cg.add(e, cg.int(half as u64)))), 16);
                            let a = i + half % sums as usize;
                            acc[a] = cg.fma(wh, x, acc[a]);
                        }
                    } else {
                        let xb = broadcast_i32(cg, cg.load_i32(xq, row_index(cg, row, k, 2, e))); // the pair as one i32
                        acc[i] = cg.dpbf16ps(acc[i], wv[c], xb);
                    }
                }
            }
        }
        acc.into_iter().map(|a| a.into()).collect()
    })
    .1;
    let acc: Vec<VectorValue> = acc.into_iter().map(|a| a.into_vector_value()).collect();
    acc.chunks(sums as usize).map(|s| s.iter().skip(1).fold(s[0], |a, &b| cg.fadd(a, b))).collect()
}

/// A block of 32 values (two vectors of 16) quantised to 8 bits: d = max|x| / 127 and
/// q = round-half-even(x · 127 / max|x|) in -127..=127 as i32 lanes (0 for an all-zero block).
pub fn q8_block<'ctx>(cg: &Cg<'ctx>, v: [VectorValue<'ctx>; 2]) -> (FloatValue<'ctx>, [VectorValue<'ctx>; 2]) {
    let abs = |v: VectorValue<'ctx>| cg.intrinsic("llvm.fabs", v.get_type(), &[v.into()]).into_vector_value();
    let both = cg.fmax(abs(v[0]), abs(v[1]));
    let _ = both.as_instruction().unwrap().set_fast_math_flags(FastMathFlags::NoNaNs);
    let amax = cg.hmax(both);
    let d = ok!(cg.b.build_float_div(amax, cg.f32.const_float(127.0), ""));
    let zero = ok!(cg.b.build_float_compare(inkwell::FloatPredicate::OEQ, amax, cg.f32.const_zero(), ""));
    let inv = cg.select(zero, cg.f32.const_zero(), ok!(cg.b.build_float_div(cg.f32.const_float(127.0), amax, "")));
    (d, v.map(|v| cg.round_to_i32(cg.fmul(v, cg.splat(inv, 16)))))
}

/// Index of element e's entry in row r of a [rows, K / per] buffer.
fn row_index<'ctx>(cg: &Cg<'ctx>, r: IntValue<'ctx>, k: u64, per: u64, e: IntValue<'ctx>) -> IntValue<'ctx> {
    cg.add(cg.mul(r, cg.int(k / per)), ok!(cg.b.build_right_shift(e, cg.int(per.trailing_zeros() as u64), false, "")))
}

/// The f32 sums [tb][groups] (16 columns each) of rows r0.. of the chunk against the column
/// groups from n0.
#[allow(clippy::too_many_arguments)]
fn tile_dot<'ctx>(cg: &Cg<'ctx>, p: &Packing, w: PointerValue<'ctx>, k: u64, g: u64, x: &Quantised<'ctx>, n0: IntValue<'ctx>, groups: u64, r0: IntValue<'ctx>, tb: u64) -> Vec<VectorValue<'ctx>> {
    let group_bytes = cg.int(p.group_bytes(k as usize) as u64);
    let first = ok!(cg.b.build_right_shift(n0, cg.int(COLS.trailing_zeros() as u64), false, ""));
    let bases: Vec<_> = (0..groups).map(|c| cg.byte_ptr(w, cg.mul(cg.add(first, cg.int(c)), group_bytes))).collect();
    let init: Vec<BasicValueEnum> = (0..tb * groups).map(|_| cg.vt(16).const_zero().into()).collect();
    let (sup, steps) = (p.sup as u64, Steps::new(cg, p));
    cg.for_carry(cg.int(0), cg.int(k), sup, init, &mut |cg, e0, acc| {
        let mut acc: Vec<VectorValue> = acc.into_iter().map(|a| a.into_vector_value()).collect();
        let supers = super_blocks(cg, p, &bases, e0);
        for &at in &supers.at {
            for line in (0..p.super_bytes() as u64).step_by(64) {
                cg.prefetch(cg.byte_ptr(at, cg.int(PREFETCH_BYTES + line)));
            }
        }
        for u in 0..(p.sup / p.unit) as u64 {
            let Unit { scale, min, quants } = unit(cg, p, &supers, u);
            // with 8-bit weights made signed (Steps), the unit's x = scale·(q − 128) + min + 128·scale
            let min: Vec<_> = min.iter().zip(&scale).map(|(&m, &s)| if steps.signed { cg.fma(s, cg.splat_const(128.0, 16), m) } else { m }).collect();
            let no_min = steps.signed && matches!(p.min, Min::Offset(o) if o == -128.0);
            for blk in 0..(p.unit as u64).div_ceil(32) {
                let e = cg.add(e0, cg.int(u * p.unit as u64 + 32 * blk)); // this block's first element
                let mut sums = BlockSums::new(cg, &steps, tb * groups);
                for s in 0..g / 4 {
                    let wv: Vec<_> = quants.iter().map(|&q| steps.weights(cg, weight_step(cg, p, q, 8 * blk + s))).collect();
                    for r in 0..tb {
                        let at = row_index(cg, cg.add(r0, cg.int(r)), k, 4, cg.add(e, cg.int(4 * s)));
                        let xb = broadcast_i32(cg, cg.load_i32(x.q, at));
                        for (c, w) in wv.iter().enumerate() {
                            sums.add(cg, (r * groups) as usize + c, w, xb);
                        }
                    }
                    sums.step_done(cg, s + 1 == g / 4);
                }
                let ints = sums.ints;
                for r in 0..tb {
                    let row = cg.add(r0, cg.int(r));
                    let dx = cg.splat(cg.load_f32(x.dx, row_index(cg, row, k, 32, e)), 16);
                    let sx = cg.splat(cg.load_f32(x.sx, row_index(cg, row, k, g, e)), 16);
                    for c in 0..groups as usize {
                        let i = r as usize * groups as usize + c;
                        let f = ok!(cg.b.build_signed_int_to_float(ints[i], cg.vt(16), ""));
                        acc[i] = cg.fma(f, cg.fmul(scale[c], dx), acc[i]);
                        if !no_min {
                            acc[i] = cg.fma(min[c], sx, acc[i]);
                        }
                    }
                }
            }
        }
        acc.into_iter().map(|a| a.into()).collect()
    })
    .1
    .into_iter()
    .map(|a| a.into_vector_value())
    .collect()
}

/// A weight step (4 elements of 16 columns): the bytes `BlockSums::add` multiplies, and (signed
/// weights) their absolute values.
struct WeightBytes<'ctx> {
    bytes: VectorValue<'ctx>,
    abs: Option<VectorValue<'ctx>>,
}

/// How a block's steps become exact i32 sums per column (`BlockSums`). With AVX512-VNNI, one `vpdpbusd` per
/// step. With AVX2, `vpmaddubsw` adds pairs of products into i16 lanes, summed over `flush`
/// steps (as many as cannot overflow i16) before `vpmaddwd` widens them to i32. A pair of
/// products of unsigned 8-bit weights (up to 2·255·127) would not fit: such weights are made
/// signed (q − 128, |q − 128| ≤ 128) and their signs moved onto the activations (`vpsignb`).
struct Steps {
    vnni: bool,
    signed: bool,
    flush: u64,
}

impl Steps {
    fn new(cg: &Cg, p: &Packing) -> Steps {
        let vnni = vnni(&cg.features);
        let signed = !vnni && p.bits == 8;
        let largest = if signed { 128 } else { (1u64 << p.bits) - 1 }; // of a weight's magnitude
        Steps { vnni, signed, flush: (i16::MAX as u64 / (2 * largest * 127)).max(1) }
    }

    fn weights<'ctx>(&self, cg: &Cg<'ctx>, bytes: VectorValue<'ctx>) -> WeightBytes<'ctx> {
        if !self.signed {
            return WeightBytes { bytes, abs: None };
        }
        let i8s = cg.ctx.i8_type();
        let bytes = ok!(cg.b.build_xor(bytes, VectorType::const_vector(&vec![i8s.const_int(0x80, false); 64]), ""));
        let abs = cg.intrinsic("llvm.abs", bytes.get_type(), &[bytes.into(), cg.ctx.bool_type().const_zero().into()]).into_vector_value();
        WeightBytes { bytes, abs: Some(abs) }
    }
}

/// A block's exact i32 sums [n] (16 columns each), step by step.
struct BlockSums<'a, 'ctx> {
    steps: &'a Steps,
    ints: Vec<VectorValue<'ctx>>,
    /// AVX2: i16 pair sums [n] since the last widening, and the steps they hold
    pairs: Vec<VectorValue<'ctx>>,
    held: u64,
}

impl<'a, 'ctx> BlockSums<'a, 'ctx> {
    fn new(cg: &Cg<'ctx>, steps: &'a Steps, n: u64) -> Self {
        let pairs = vec![cg.ctx.i16_type().vec_type(32).const_zero(); n as usize];
        BlockSums { steps, ints: (0..n).map(|_| cg.splat_i32(0, 16)).collect(), pairs, held: 0 }
    }

    /// Sum i += this step's products of weights `w` and the activation bytes `x`.
    fn add(&mut self, cg: &Cg<'ctx>, i: usize, w: &WeightBytes<'ctx>, x: VectorValue<'ctx>) {
        if self.steps.vnni {
            self.ints[i] = cg.dpbusd(self.ints[i], w.bytes, x);
            return;
        }
        let products = match w.abs {
            Some(abs) => cg.maddubs(abs, cg.sign_bytes(x, w.bytes)),
            None => cg.maddubs(w.bytes, x),
        };
        // a saturating add (never saturates below `flush`) keeps the sums in step order: LLVM
        // reassociates plain adds into per-row trees that hold every step's weights at once
        self.pairs[i] = cg.intrinsic("llvm.sadd.sat", products.get_type(), &[self.pairs[i].into(), products.into()]).into_vector_value();
    }

    /// After each step: the pair sums widened into the i32 sums before another step could
    /// overflow them, and after the block's last.
    fn step_done(&mut self, cg: &Cg<'ctx>, last: bool) {
        self.held += 1;
        if self.steps.vnni || !(last || self.held == self.steps.flush) {
            return;
        }
        for (sum, pair) in self.ints.iter_mut().zip(&mut self.pairs) {
            *sum = ok!(cg.b.build_int_add(*sum, cg.pair_sums(*pair), ""));
            *pair = pair.get_type().const_zero();
        }
        self.held = 0;
    }
}

/// The super-blocks holding element e0 of the column groups at `bases`, with (K-quants) their
/// f16 d and −dmin as 16 columns of f32.
pub(super) struct Supers<'ctx> {
    at: Vec<PointerValue<'ctx>>,
    d: Vec<VectorValue<'ctx>>,
    neg_dmin: Vec<VectorValue<'ctx>>,
}

pub(super) fn super_blocks<'ctx>(cg: &Cg<'ctx>, p: &Packing, bases: &[PointerValue<'ctx>], e0: IntValue<'ctx>) -> Supers<'ctx> {
    let sb = ok!(cg.b.build_right_shift(e0, cg.int(p.sup.trailing_zeros() as u64), false, ""));
    let at: Vec<_> = bases.iter().map(|&b| cg.byte_ptr(b, cg.mul(sb, cg.int(p.super_bytes() as u64)))).collect();
    let factors = matches!(p.scale, Scale::Factor { .. });
    let header = |off: u64| -> Vec<VectorValue> { at.iter().map(|&s| if factors { floats(cg, ScaleType::F16, cg.byte_ptr(s, cg.int(off)), 16) } else { cg.splat_const(1.0, 16) }).collect() };
    let (d, neg_dmin) = (header(0), header(2 * COLS as u64));
    Supers { at, d, neg_dmin }
}

/// Unit `u` of each super-block: x = scale·q + min, 16 columns each, and where its quants start.
pub(super) struct Unit<'ctx> {
    pub scale: Vec<VectorValue<'ctx>>,
    pub min: Vec<VectorValue<'ctx>>,
    pub quants: Vec<PointerValue<'ctx>>,
}

pub(super) fn unit<'ctx>(cg: &Cg<'ctx>, p: &Packing, supers: &Supers<'ctx>, u: u64) -> Unit<'ctx> {
    let units: Vec<_> = supers.at.iter().map(|&s| cg.byte_ptr(s, cg.int(p.header_bytes() as u64 + u * p.unit_bytes() as u64))).collect();
    let scale: Vec<_> = units.iter().zip(&supers.d).map(|(&at, &d)| unit_floats(cg, p, at, 0, d)).collect();
    let min = (0..units.len())
        .map(|c| match p.min {
            Min::Offset(o) => cg.fmul(scale[c], cg.splat_const(o as f64, 16)),
            Min::Stored => unit_floats(cg, p, units[c], p.unit_scale_bytes() as u64 / 2, supers.neg_dmin[c]),
        })
        .collect();
    let quants = units.iter().map(|&u| cg.byte_ptr(u, cg.int(p.unit_scale_bytes() as u64))).collect();
    Unit { scale, min, quants }
}

/// A unit's 16 scales (`offset` 0) or mins (at `offset`), as f32; factors times `base` (d, −dmin).
fn unit_floats<'ctx>(cg: &Cg<'ctx>, p: &Packing, unit: PointerValue<'ctx>, offset: u64, base: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let at = cg.byte_ptr(unit, cg.int(offset));
    match p.scale {
        Scale::Float(t) => floats(cg, t, at, 16),
        Scale::Factor { signed } => {
            let bytes = cg.load_ints(at, cg.ctx.i8_type().vec_type(16));
            let f = if signed { ok!(cg.b.build_signed_int_to_float(bytes, cg.vt(16), "")) } else { ok!(cg.b.build_unsigned_int_to_float(bytes, cg.vt(16), "")) };
            cg.fmul(f, base)
        }
    }
}

/// Step `s` (4 elements of 16 columns, 64 bytes) of a unit's quants at `q`.
pub(super) fn weight_step<'ctx>(cg: &Cg<'ctx>, p: &Packing, q: PointerValue<'ctx>, s: u64) -> VectorValue<'ctx> {
    let bytes = cg.ctx.i8_type().vec_type(64);
    if p.bits == 8 {
        return cg.load_ints(cg.byte_ptr(q, cg.int(64 * s)), bytes);
    }
    let splat8 = |v: u64| VectorType::const_vector(&vec![cg.ctx.i8_type().const_int(v, false); 64]);
    let packed = cg.load_ints(cg.byte_ptr(q, cg.int(64 * (s / 2))), bytes);
    let mut v = if s.is_multiple_of(2) { ok!(cg.b.build_and(packed, splat8(15), "")) } else { ok!(cg.b.build_right_shift(packed, splat8(4), false, "")) };
    let planes = p.unit as u64 / 8 * 64;
    for bit in 4..p.bits as u64 {
        let at = cg.byte_ptr(q, cg.int(planes + 8 * ((bit - 4) * p.unit as u64 / 4 + s)));
        let mask = cg.load_ints(at, cg.i64.vec_type(1));
        let mask = ok!(cg.b.build_bit_cast(mask, cg.ctx.bool_type().vec_type(64), "")).into_vector_value();
        v = ok!(cg.b.build_select(mask, ok!(cg.b.build_or(v, splat8(1 << bit), "")), v, "")).into_vector_value();
    }
    v
}

/// An i32 in all 16 lanes, as 64 bytes.
fn broadcast_i32<'ctx>(cg: &Cg<'ctx>, v: IntValue<'ctx>) -> VectorValue<'ctx> {
    let v = ok!(cg.b.build_int_truncate(v, cg.i32, ""));
    let one = ok!(cg.b.build_insert_element(cg.i32.vec_type(16).get_undef(), v, cg.int(0), ""));
    let all = ok!(cg.b.build_shuffle_vector(one, cg.i32.vec_type(16).get_undef(), cg.i32.vec_type(16).const_zero(), ""));
    ok!(cg.b.build_bit_cast(all, cg.ctx.i8_type().vec_type(64), "")).into_vector_value()
}

/// The epilogue on 16 columns' sums from j0 (those below `end`), stored into out [rows, n].
#[allow(clippy::too_many_arguments)]
pub(super) fn store<'ctx>(cg: &Cg<'ctx>, epilogue: &KExpr, ptrs: &[PointerValue<'ctx>], out: PointerValue<'ctx>, n: u64, t: IntValue<'ctx>, j0: IntValue<'ctx>, end: IntValue<'ctx>, acc: VectorValue<'ctx>) {
    let row = cg.mul(t, cg.int(n));
    if n.is_multiple_of(COLS as u64) {
        let y = eval(cg, epilogue, ptrs, &At { t, j: j0, width: n, lanes: 16, acc: Some(acc), inv_rms: None });
        cg.store(out, cg.add(row, j0), y);
        return;
    }
    // a width that is not whole groups: column by column
    let stop = cg.min(end, cg.add(j0, cg.int(COLS as u64)));
    cg.for_each(j0, stop, 1, &mut |cg, j| {
        let lane = ok!(cg.b.build_int_sub(j, j0, ""));
        let s = ok!(cg.b.build_extract_element(acc, lane, "")).into_float_value();
        let y = eval(cg, epilogue, ptrs, &At { t, j, width: n, lanes: 1, acc: Some(cg.splat(s, 1)), inv_rms: None });
        cg.store(out, cg.add(row, j), y);
    });
}
