//! Attention on AMX tiles: the attention kernel's path (attention.rs) for a tile of TILE_ROWS
//! query rows of one sequence and one KV head with its query heads, on CPUs with AMX-BF16 where
//! the runtime handed the kernel its scratch. Flash attention, transposed so that each lane is a
//! query: per block of KB cache rows,
//!   Sᵀ [KB keys, 16 queries] = K · Qᵀ    A: the keys' bf16 rows; B: Qᵀ in pairs, made once per tile
//!   online softmax down the keys          max and sum are vertical: no horizontal reductions
//!   Oᵀ [hd, 16 queries] += Vᵀ · Pᵀ       A: the values transposed (once per block for the group); B: P in pairs
//! and Oᵀ is turned back into rows at the end. A row's running max is raised only when a block's
//! exceeds it by more than RAISE (Oᵀ is then rescaled), so Oᵀ usually stays as it is from block to
//! block: weights e^(s − m) stay below e^RAISE, far within f32 and at bf16's relative precision.
//!
//! Keys and values are rounded to bf16 from the cache (f16 or Q8_0), queries and weights from
//! f32; products are summed in f32. An f32 cache (the exact path) stays on attention.rs's FMAs.
use inkwell::values::{IntValue, PointerValue, VectorValue};
use runtime::plan::KvDtype;

use super::amx::configure;
use super::attention::Args;
use super::attention_tile::{max, transpose, Mask, TileRows};
use super::codegen::{ok, Cg};
use super::copy::load_kv;
use super::kernel::AttentionSpec;

/// Cache rows per block (the K of one tile step: 16 pairs of bf16).
const KB: u64 = 32;
const RAISE: f64 = 8.0;
const NEG: f64 = -1e30;
/// Bytes of one tile: 16 rows of 64.
const TILE: u64 = 1024;

/// Whether attention with `spec` has a tile path on a target with `features`.
pub fn supports(features: &[String], spec: &AttentionSpec) -> bool {
    let has = |f: &str| features.iter().any(|x| x == f);
    has("amx-tile") && has("amx-bf16") && has("avx512bf16") && spec.kv != KvDtype::F32 && spec.head_dim.is_multiple_of(KB as usize)
}

/// Byte offsets in one thread's scratch: tile config (64) | Qᵀ [group][hd / 32] tiles | K block
/// [KB][hd] bf16 | Vᵀ [hd / 16] tiles | Sᵀ [group][KB][16] f32 | Pᵀ pairs [group] tiles | Oᵀ
/// [group][hd][16] f32 | max [group][16] f32 | sum [group][16] f32 | end.
struct Layout {
    qt: u64,
    kb: u64,
    vt: u64,
    s: u64,
    p: u64,
    ot: u64,
    m: u64,
    l: u64,
    end: u64,
}

impl Layout {
    fn new(spec: &AttentionSpec) -> Layout {
        let (hd, group) = (spec.head_dim as u64, (spec.heads / spec.kv_heads) as u64);
        let qt = 64;
        let kb = qt + group * hd / 32 * TILE;
        let vt = kb + KB * hd * 2;
        let s = vt + hd / 16 * TILE;
        let p = s + group * KB * 64;
        let ot = p + group * TILE;
        let m = ot + group * hd * 64;
        let l = m + group * 64;
        Layout { qt, kb, vt, s, p, ot, m, l, end: l + group * 64 }
    }
}

pub fn scratch_bytes(spec: &AttentionSpec) -> usize {
    Layout::new(spec).end as usize
}

/// Rows t0..t0 + 16, the query heads of KV head g.
pub fn emit<'ctx>(cg: &Cg<'ctx>, spec: &AttentionSpec, a: &Args<'ctx>, scratch: PointerValue<'ctx>, t0: IntValue<'ctx>, g: IntValue<'ctx>) {
    let (hd, group) = (spec.head_dim as u64, (spec.heads / spec.kv_heads) as u64);
    let (qw, kvw) = (spec.heads as u64 * hd, spec.kv_heads as u64 * hd);
    let ly = Layout::new(spec);
    let at = |bytes: u64| cg.byte_ptr(scratch, cg.int(bytes));
    configure(cg, at(0));
    let tile_rows = TileRows::of(cg, spec.window, a.pos, t0, 16);
    let base = cg.load_i32(a.base, t0);
    let q0 = cg.add(cg.mul(t0, cg.int(qw)), cg.mul(g, cg.int(group * hd))); // row t0's first query head of the group
    for h in 0..group {
        for c in 0..hd / 32 {
            let rows = (0..16).map(|r| {
                let e = cg.add(q0, cg.int(r * qw + h * hd + c * 32));
                cg.bf16_words(cg.load(a.q, e, 16), cg.load(a.q, cg.add(e, cg.int(16)), 16))
            });
            store_rows(cg, at(ly.qt + (h * hd / 32 + c) * TILE), &transpose(cg, rows.map(|v| dwords(cg, v)).collect()));
        }
        (0..hd).for_each(|d| cg.store(at(ly.ot + (h * hd + d) * 64), cg.int(0), cg.vt(16).const_zero()));
        cg.store(at(ly.m + h * 64), cg.int(0), cg.splat_const(NEG, 16));
        cg.store(at(ly.l + h * 64), cg.int(0), cg.vt(16).const_zero());
    }
    let start = cg.mul(ok!(cg.b.build_int_unsigned_div(tile_rows.lo, cg.int(KB), "")), cg.int(KB));
    cg.for_each(start, cg.add(tile_rows.hi, cg.int(KB - 1)), KB, &mut |cg, s0| {
        // element of key i's head g: rows past hi read row hi − 1 (masked), so stale cache never enters
        let last = ok!(cg.b.build_int_sub(tile_rows.hi, cg.int(1), ""));
        let key = |i: u64| cg.add(cg.mul(cg.add(base, cg.min(cg.add(s0, cg.int(i)), last)), cg.int(kvw)), cg.mul(g, cg.int(hd)));
        for i in 0..KB {
            for c in 0..hd / 32 {
                let e = cg.add(key(i), cg.int(c * 32));
                let words = cg.bf16_words(load_kv(cg, a.kc, e, 16, spec.kv), load_kv(cg, a.kc, cg.add(e, cg.int(16)), 16, spec.kv));
                cg.store_ints(at(ly.kb + (i * hd + c * 32) * 2), words);
            }
        }
        for e in 0..hd / 16 {
            let pairs = (0..KB / 2).map(|i| {
                let [x, y] = [2 * i, 2 * i + 1].map(|k| load_kv(cg, a.vc, cg.add(key(k), cg.int(16 * e)), 16, spec.kv));
                dwords(cg, cg.bf16_pairs(x, y))
            });
            store_rows(cg, at(ly.vt + e * TILE), &transpose(cg, pairs.collect()));
        }
        let (keys, all_see) = (tile_rows.masks(cg, s0), tile_rows.all_see(cg, s0, KB));
        // phase by phase over the heads: a tile load right after the vector stores of its data
        // (or vector loads right after a tile store) waits for them to reach the cache
        (0..group).for_each(|h| scores(cg, &ly, hd, h, &at));
        cg.when(all_see, &mut |cg| (0..group).for_each(|h| softmax(cg, spec, &ly, hd, h, &at, None)));
        cg.when(ok!(cg.b.build_not(all_see, "")), &mut |cg| (0..group).for_each(|h| softmax(cg, spec, &ly, hd, h, &at, Some(&keys[0]))));
        (0..group).for_each(|h| values(cg, &ly, hd, h, &at));
    });
    cg.amx("llvm.x86.tilerelease", &[]);
    // out rows: Oᵀ / l, transposed 16 dims at a time
    for h in 0..group {
        let inv_l = cg.fdiv(cg.splat_const(1.0, 16), cg.load(at(ly.l + h * 64), cg.int(0), 16));
        for e in 0..hd / 16 {
            let dims = (0..16).map(|d| cg.fmul(cg.load(at(ly.ot + (h * hd + 16 * e + d) * 64), cg.int(0), 16), inv_l)).collect();
            for (r, row) in transpose(cg, dims).into_iter().enumerate() {
                cg.store(a.out, cg.add(q0, cg.int(r as u64 * qw + h * hd + 16 * e)), row);
            }
        }
    }
}

/// Sᵀ [KB keys][16 queries] = K · Qᵀ of head h, into scratch: C tiles 0 and 1 (keys 0..16, 16..32),
/// B (queries) tile 2, A (keys) tiles 3 and 4, so that the two sums run side by side.
fn scores<'ctx>(cg: &Cg<'ctx>, ly: &Layout, hd: u64, h: u64, at: &dyn Fn(u64) -> PointerValue<'ctx>) {
    (0..2).for_each(|j| cg.amx("llvm.x86.tilezero", &[tile(cg, j)]));
    for c in 0..hd / 32 {
        cg.amx("llvm.x86.tileloadd64", &[tile(cg, 2), at(ly.qt + (h * hd / 32 + c) * TILE).into(), cg.int(64).into()]);
        for j in 0..2 {
            cg.amx("llvm.x86.tileloadd64", &[tile(cg, 3 + j), at(ly.kb + (16 * j * hd + 32 * c) * 2).into(), cg.int(2 * hd).into()]);
            cg.amx("llvm.x86.tdpbf16ps", &[tile(cg, j), tile(cg, 3 + j), tile(cg, 2)]);
        }
    }
    (0..2).for_each(|j| cg.amx("llvm.x86.tilestored64", &[tile(cg, j), at(ly.s + (2 * h + j) * TILE).into(), cg.int(64).into()]));
}

/// Oᵀ of head h += Vᵀ · Pᵀ: four Oᵀ tiles at a time in C tiles 0-3, Pᵀ in tile 4, Vᵀ in 5-7 in turn.
fn values<'ctx>(cg: &Cg<'ctx>, ly: &Layout, hd: u64, h: u64, at: &dyn Fn(u64) -> PointerValue<'ctx>) {
    cg.amx("llvm.x86.tileloadd64", &[tile(cg, 4), at(ly.p + h * TILE).into(), cg.int(64).into()]);
    let chunks: Vec<u64> = (0..hd / 16).collect();
    for four in chunks.chunks(4) {
        let o = |e: u64| at(ly.ot + (h * hd + 16 * e) * 64);
        four.iter().enumerate().for_each(|(i, &e)| cg.amx("llvm.x86.tileloadd64", &[tile(cg, i as u64), o(e).into(), cg.int(64).into()]));
        for (i, &e) in four.iter().enumerate() {
            let v = 5 + i as u64 % 3;
            cg.amx("llvm.x86.tileloadd64", &[tile(cg, v), at(ly.vt + e * TILE).into(), cg.int(64).into()]);
            cg.amx("llvm.x86.tdpbf16ps", &[tile(cg, i as u64), tile(cg, v), tile(cg, 4)]);
        }
        four.iter().enumerate().for_each(|(i, &e)| cg.amx("llvm.x86.tilestored64", &[tile(cg, i as u64), o(e).into(), cg.int(64).into()]));
    }
}

/// Head h's online softmax over the block's scores (lanes = rows), in two passes over them:
/// scaled, capped and masked scores and their max; then the running max raised where the block's
/// exceeds it by RAISE (Oᵀ and the sum rescaled), and the weights added to the sum and left as
/// bf16 pairs of keys (the B tile of Pᵀ).
fn softmax<'ctx>(cg: &Cg<'ctx>, spec: &AttentionSpec, ly: &Layout, hd: u64, h: u64, at: &dyn Fn(u64) -> PointerValue<'ctx>, mask: Option<&Mask<'ctx>>) {
    let neg = cg.splat_const(NEG, 16);
    let score = |k: u64| at(ly.s + (h * KB + k) * 64);
    let mut block_max = neg;
    for k in 0..KB {
        let mut x = cg.fmul(cg.load(score(k), cg.int(0), 16), cg.splat_const(spec.scale as f64, 16));
        if let Some(cap) = spec.softcap {
            x = cg.softcap(x, cap);
        }
        if let Some(m) = mask {
            x = m.apply(cg, cg.int(k), x, neg);
        }
        cg.store(score(k), cg.int(0), x);
        block_max = max(cg, block_max, x);
    }
    let (m, l) = (at(ly.m + h * 64), at(ly.l + h * 64));
    let m_old = cg.load(m, cg.int(0), 16);
    let raise = ok!(cg.b.build_float_compare(inkwell::FloatPredicate::OGT, block_max, cg.fadd(m_old, cg.splat_const(RAISE, 16)), ""));
    let m_new = ok!(cg.b.build_select(raise, block_max, m_old, "")).into_vector_value();
    let corr = cg.exp(cg.fsub(m_old, m_new));
    // Oᵀ is still zero where no key was seen yet
    let seen = ok!(cg.b.build_float_compare(inkwell::FloatPredicate::OGT, m_old, cg.splat_const(NEG, 16), ""));
    let rescale = ok!(cg.b.build_and(raise, seen, ""));
    let any = cg.intrinsic("llvm.vector.reduce.or", rescale.get_type(), &[rescale.into()]).into_int_value();
    cg.when(any, &mut |cg| {
        for d in 0..hd {
            let o = at(ly.ot + (h * hd + d) * 64);
            cg.store(o, cg.int(0), cg.fmul(cg.load(o, cg.int(0), 16), corr));
        }
    });
    let mut sum = cg.fmul(cg.load(l, cg.int(0), 16), corr);
    for i in 0..KB / 2 {
        let [p0, p1] = [2 * i, 2 * i + 1].map(|k| {
            let p = cg.exp(cg.fsub(cg.load(score(k), cg.int(0), 16), m_new));
            mask.map_or(p, |m| m.apply(cg, cg.int(k), p, cg.vt(16).const_zero()))
        });
        sum = cg.fadd(sum, cg.fadd(p0, p1));
        cg.store_ints(at(ly.p + h * TILE + 64 * i), cg.bf16_pairs(p0, p1));
    }
    cg.store(m, cg.int(0), m_new);
    cg.store(l, cg.int(0), sum);
}

fn tile<'ctx>(cg: &Cg<'ctx>, t: u64) -> inkwell::values::BasicMetadataValueEnum<'ctx> {
    cg.ctx.i8_type().const_int(t, false).into()
}

/// Any 64-byte vector as 16 i32.
fn dwords<'ctx>(cg: &Cg<'ctx>, v: VectorValue<'ctx>) -> VectorValue<'ctx> {
    ok!(cg.b.build_bit_cast(v, cg.i32.vec_type(16), "")).into_vector_value()
}

/// 16 vectors as the 16 rows of 64 bytes from `at`.
fn store_rows<'ctx>(cg: &Cg<'ctx>, at: PointerValue<'ctx>, rows: &[VectorValue<'ctx>]) {
    for (i, &r) in rows.iter().enumerate() {
        cg.store_ints(cg.byte_ptr(at, cg.int(64 * i as u64)), r);
    }
}
