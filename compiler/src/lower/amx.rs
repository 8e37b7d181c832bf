//! AMX matmuls: the dot-product kernels' (dot.rs) path for passes of many rows, on CPUs with AMX
//! tiles and bf16 products (Sapphire Rapids and later), where the runtime was granted the tile
//! state (runtime::cpu::amx_granted) and so hands the kernel its scratch.
//!
//! Activations are rounded to bf16 once per row (as dot.rs's bf16 path does). The weights of each
//! block of 32 columns are turned into bf16 once per call, from their packed units (x = scale·q +
//! min, exactly as the int8 path reads them, then rounded to nearest even; BF16 weights are read
//! in place: their packed pairs are already the tile layout). Then every 32 rows of the block are
//! four 16 × 16 f32 tiles, each `tdpbf16ps` adding 16 rows × 32 elements × 16 columns; K runs in
//! chunks of KC whose weights stay in L1 while every 32 rows meet them (the tiles parked in
//! scratch between chunks), and the epilogue runs on the finished tiles 16 columns at a time, as
//! in dot.rs.
//!
//! Rows past the last whole 32 are left to the int8/bf16 path, as are passes of fewer than
//! MIN_ROWS rows (a block's conversion would cost more than the tiles save).
use inkwell::values::{IntValue, PointerValue, VectorValue};
use inkwell::IntPredicate;

use super::codegen::{ok, Cg, KernelArgs};
use super::dot::{bf16_row, store, super_blocks, unit, weight_step};
use super::kernel::KExpr;
use super::matmul::prologue_row;
use super::weight_format::WeightFormat;
use crate::repack::{Packing, COLS};

/// Rows of a block (two tiles of 16), elements a tile step covers (16 pairs of bf16).
const RB: u64 = 32;
const KT: u64 = 32;
/// Elements of a chunk of K: its weights (2 groups, 64 bytes per 2 elements) take 16 KiB of L1.
const KC: u64 = 256;
pub const MIN_ROWS: u64 = 64;

/// Whether a matmul on `format` with rows of `k` has an AMX path on a target with `features`.
pub fn supports(features: &[String], format: WeightFormat, k: usize) -> bool {
    let has = |f: &str| features.iter().any(|x| x == f);
    has("amx-tile") && has("amx-bf16") && has("avx512bf16") && super::dot::supports(features, format, k) && k.is_multiple_of(KT as usize)
}

/// Scratch of one thread for rows of `k` and up to `rows` rows: tile config (64 bytes) | weights
/// [2 groups][K / 2][16 columns × 2] bf16 | activations [K / 32][rows][32] bf16 | C [rows, 32] f32.
pub fn scratch_bytes(k: usize, rows: usize) -> usize {
    64 + 64 * k + 2 * rows * k + 4 * RB as usize * rows
}

/// The AMX part of a dot-product matmul: rows 0.. in whole blocks of 32 when the pass has
/// MIN_ROWS and scratch was given; returns the rows it did (0 otherwise).
#[allow(clippy::too_many_arguments)]
pub fn emit<'ctx>(cg: &Cg<'ctx>, ka: &KernelArgs<'ctx>, ptrs: &[PointerValue<'ctx>], out: PointerValue<'ctx>, k: u64, n: u64, input: &KExpr, epilogue: &KExpr, p: Option<Packing>, xs: PointerValue<'ctx>) -> IntValue<'ctx> {
    let w = ptrs[0];
    let granted = ok!(cg.b.build_is_not_null(ka.scratch, ""));
    let many = ok!(cg.b.build_int_compare(IntPredicate::SGE, ka.rows, cg.int(MIN_ROWS), ""));
    let go = ok!(cg.b.build_and(granted, many, ""));
    let whole = ok!(cg.b.build_and(ka.rows, cg.int(!(RB - 1)), ""));
    let rows = ok!(cg.b.build_select(go, whole, cg.int(0), "")).into_int_value();
    let at = |bytes: u64| cg.byte_ptr(ka.scratch, cg.int(bytes));
    let (config, panel, xb) = (at(0), at(64), at(64 + 64 * k));
    let c = cg.byte_ptr(xb, cg.mul(rows, cg.int(2 * k)));
    // without an epilogue, and whole groups of columns, the last K chunk's tiles go straight to the output
    let direct = matches!(epilogue, KExpr::Acc) && n.is_multiple_of(COLS as u64);
    cg.when(go, &mut |cg| {
        configure(cg, config);
        cg.for_each(cg.int(0), rows, 1, &mut |cg, r| {
            prologue_row(cg, input, ptrs, r, k, xs);
            // tile by tile: [K / 32][rows][32], so that an A tile is 1 KiB in one piece
            bf16_row(cg, xs, k, xb, false, &|cg, e| {
                let tile = ok!(cg.b.build_right_shift(e, cg.int(KT.trailing_zeros() as u64), false, ""));
                let within = ok!(cg.b.build_and(e, cg.int(KT - 1), ""));
                cg.add(cg.mul(cg.add(cg.mul(tile, rows), r), cg.int(2 * KT)), cg.mul(within, cg.int(2)))
            });
        });
        let block = |cg: &Cg<'ctx>, n0: IntValue<'ctx>, groups: u64| {
            let weights: Vec<_> = (0..groups).map(|g| block_weights(cg, p, w, k, cg.add(n0, cg.int(COLS as u64 * g)), cg.byte_ptr(panel, cg.int(32 * k * g)))).collect();
            // K in chunks whose weights stay in L1 while every block of rows meets them
            let past = cg.int(k + KC - KT);
            cg.for_each(cg.int(0), past, KC, &mut |cg, k0| {
                let k1 = cg.min(cg.add(k0, cg.int(KC)), cg.int(k));
                let last = ok!(cg.b.build_int_compare(IntPredicate::EQ, k1, cg.int(k), ""));
                let to_out = ok!(cg.b.build_and(last, cg.ctx.bool_type().const_int(direct as u64, false), ""));
                cg.for_each(cg.int(0), rows, RB, &mut |cg, r0| {
                    // C rows r0.. in scratch (rows of 32 floats), or, last, the output's when it is C itself
                    let c = cg.byte_ptr(c, cg.mul(r0, cg.int(4 * RB)));
                    let out_rows = cg.byte_ptr(out, cg.mul(cg.add(cg.mul(r0, cg.int(n)), n0), cg.int(4)));
                    let to = ok!(cg.b.build_select(to_out, out_rows, c, "")).into_pointer_value();
                    let stride = ok!(cg.b.build_select(to_out, cg.int(4 * n), cg.int(4 * RB), "")).into_int_value();
                    tiles(cg, xb, rows, r0, &weights, [k0, k1], c, (to, stride));
                });
            });
            if direct {
                return;
            }
            cg.for_each(cg.int(0), rows, 1, &mut |cg, r| {
                for g in 0..groups {
                    let acc = cg.load(c, cg.add(cg.mul(r, cg.int(RB)), cg.int(COLS as u64 * g)), 16);
                    store(cg, epilogue, ptrs, out, n, r, cg.add(n0, cg.int(COLS as u64 * g)), ka.end, acc);
                }
            });
        };
        let rest = cg.for_each(ka.begin, ka.end, 2 * COLS as u64, &mut |cg, n0| block(cg, n0, 2));
        // a last single group, possibly partial
        let past = cg.add(ka.end, cg.int(COLS as u64 - 1));
        cg.for_each(rest, past, COLS as u64, &mut |cg, n0| block(cg, n0, 1));
        cg.amx("llvm.x86.tilerelease", &[]);
    });
    rows
}

/// Palette 1; tiles 0-3 (C), 4-5 (A), 6-7 (B) all 16 rows of 64 bytes.
pub fn configure<'ctx>(cg: &Cg<'ctx>, config: PointerValue<'ctx>) {
    let mut bytes = [0u64; 64];
    bytes[0] = 1;
    for t in 0..8 {
        bytes[16 + 2 * t] = 64; // colsb[t], little-endian u16
        bytes[48 + t] = 16; // rows[t]
    }
    let i8s = cg.ctx.i8_type();
    let v = inkwell::types::VectorType::const_vector(&bytes.map(|b| i8s.const_int(b, false)));
    cg.store_ints(config, v);
    cg.amx("llvm.x86.ldtilecfg", &[config.into()]);
}

/// Where the bf16 pairs [K / 2][16 columns × 2] of the column group from n0 are: BF16 weights'
/// packed group itself, other formats' group converted into `panel`.
fn block_weights<'ctx>(cg: &Cg<'ctx>, p: Option<Packing>, w: PointerValue<'ctx>, k: u64, n0: IntValue<'ctx>, panel: PointerValue<'ctx>) -> PointerValue<'ctx> {
    let Some(p) = p else { return cg.byte_ptr(w, cg.mul(n0, cg.int(2 * k))) };
    let first = ok!(cg.b.build_right_shift(n0, cg.int(COLS.trailing_zeros() as u64), false, ""));
    let base = cg.byte_ptr(w, cg.mul(first, cg.int(p.group_bytes(k as usize) as u64)));
    cg.for_each(cg.int(0), cg.int(k), p.sup as u64, &mut |cg, e0| {
        let supers = super_blocks(cg, &p, &[base], e0);
        for u in 0..(p.sup / p.unit) as u64 {
            let unit = unit(cg, &p, &supers, u);
            for s in 0..p.unit as u64 / 4 {
                // 4 elements of 16 columns: column c's 4 quants in bytes 4c..4c+4
                let q = ok!(cg.b.build_bit_cast(weight_step(cg, &p, unit.quants[0], s), cg.i32.vec_type(16), "")).into_vector_value();
                let x: Vec<VectorValue> = (0..4)
                    .map(|i| {
                        let byte = ok!(cg.b.build_and(ok!(cg.b.build_right_shift(q, cg.splat_i32(8 * i, 16), false, "")), cg.splat_i32(255, 16), ""));
                        cg.fma(ok!(cg.b.build_unsigned_int_to_float(byte, cg.vt(16), "")), unit.scale[0], unit.min[0])
                    })
                    .collect();
                let e = cg.add(e0, cg.int(u * p.unit as u64 + 4 * s));
                for pair in 0..2 {
                    let at = cg.byte_ptr(panel, cg.mul(cg.add(e, cg.int(2 * pair)), cg.int(32)));
                    cg.store_ints(at, cg.bf16_pairs(x[2 * pair as usize], x[2 * pair as usize + 1]));
                }
            }
        }
    });
    panel
}

/// Elements [k0, k1) of C [32, 16 · groups] f32 for rows r0.. (bf16 in xb [K / 32][rows][32])
/// against the groups' weights: per 32 elements, two A tiles (16 rows each) meet one B tile per
/// group. C starts from zero at element 0, else from the scratch rows of 32 floats at `c`; it is
/// left at `to` (address, row stride in bytes).
fn tiles<'ctx>(cg: &Cg<'ctx>, xb: PointerValue<'ctx>, rows: IntValue<'ctx>, r0: IntValue<'ctx>, weights: &[PointerValue<'ctx>], [k0, k1]: [IntValue<'ctx>; 2], c: PointerValue<'ctx>, to: (PointerValue<'ctx>, IntValue<'ctx>)) {
    let t = |i: u64| cg.ctx.i8_type().const_int(i, false).into();
    let stride = |s: u64| cg.int(s).into();
    let cs: Vec<(u64, PointerValue)> = (0..2).flat_map(|a| (0..weights.len() as u64).map(move |g| (a, g))).map(|(a, g)| (2 * a + g, cg.byte_ptr(c, cg.int(4 * (16 * a * RB + COLS as u64 * g))))).collect();
    let first = ok!(cg.b.build_int_compare(IntPredicate::EQ, k0, cg.int(0), ""));
    let later = ok!(cg.b.build_not(first, ""));
    cg.when(first, &mut |cg| cs.iter().for_each(|&(i, _)| cg.amx("llvm.x86.tilezero", &[t(i)])));
    cg.when(later, &mut |cg| cs.iter().for_each(|&(i, at)| cg.amx("llvm.x86.tileloadd64", &[t(i), at.into(), stride(4 * RB)])));
    cg.for_each(k0, k1, KT, &mut |cg, e| {
        let tile = cg.mul(ok!(cg.b.build_right_shift(e, cg.int(KT.trailing_zeros() as u64), false, "")), rows);
        for a in 0..2 {
            let at = cg.mul(cg.add(tile, cg.add(r0, cg.int(16 * a))), cg.int(2 * KT));
            cg.amx("llvm.x86.tileloadd64", &[t(4 + a), cg.byte_ptr(xb, at).into(), stride(2 * KT)]);
        }
        for (g, &wg) in weights.iter().enumerate() {
            cg.amx("llvm.x86.tileloadd64", &[t(6 + g as u64), cg.byte_ptr(wg, cg.mul(e, cg.int(32))).into(), stride(64)]);
        }
        for &(i, _) in &cs {
            cg.amx("llvm.x86.tdpbf16ps", &[t(i), t(4 + i / 2), t(6 + i % 2)]);
        }
    });
    for &(i, _) in &cs {
        let at = cg.byte_ptr(to.0, cg.add(cg.mul(to.1, cg.int(16 * (i / 2))), cg.int(4 * COLS as u64 * (i % 2))));
        cg.amx("llvm.x86.tilestored64", &[t(i), at.into(), to.1.into()]);
    }
}
