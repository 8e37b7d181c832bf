//! Flash attention on vector registers: the attention kernel's path (attention.rs) for a tile of
//! TILE_ROWS query rows of one sequence and one KV head with its query heads, where there are no
//! AMX tiles (attention_amx.rs). Transposed as there, so that each lane is a query row and no
//! sum runs across lanes: per block of KB cache rows, for each query head,
//!   S [KB keys][16 queries] = Σ_d K[key][d] · Qᵀ[d]     the key's element broadcast, one FMA per vector of rows
//!   online softmax down the keys                          max and sum are vertical
//!   Oᵀ [hd][16 queries] += Σ_key V[key][d] · P[key]      the value's element broadcast
//! so each key and value element loaded serves 16 rows (the row path's serves one), and the
//! softmax's serial steps (max, rescale, sum) run once per block for 16 rows. Keys and values are
//! converted to f32 once per block for the group; all arithmetic is f32, so the results are
//! those of the row path in another order of summation. A row's running max is raised only when
//! a block's exceeds it by more than RAISE, so Oᵀ is rarely rescaled.
use inkwell::values::{BasicValueEnum, IntValue, PointerValue};
use runtime::plan::{KvDtype, TILE_ROWS};

use super::attention::Args;
use super::attention_tile::{max, transpose, Mask, TileRows};
use super::codegen::{ok, Cg};
use super::copy::load_kv;
use super::kernel::AttentionSpec;

/// Cache rows per block.
const KB: u64 = 32;
const RAISE: f64 = 8.0;
const NEG: f64 = -1e30;
/// Rows of a tile, as f32 elements of one key's scores or one dim's outputs.
const TR: u64 = TILE_ROWS as u64;

/// Whether attention with `spec` has this path on a target with `features` (where AMX's is not).
pub fn supports(features: &[String], spec: &AttentionSpec) -> bool {
    !super::attention_amx::supports(features, spec) && spec.kv != KvDtype::F32 && spec.head_dim.is_multiple_of(TILE_ROWS)
}

/// Offsets in one thread's scratch, in f32: Qᵀ [group][hd][16] (scaled) | Oᵀ [group][hd][16] |
/// max [group][16] | sum [group][16] | K [KB][hd] | V [KB][hd] | S, then P [KB][16] | end.
struct Layout {
    qt: u64,
    ot: u64,
    m: u64,
    l: u64,
    k: u64,
    v: u64,
    s: u64,
    end: u64,
}

impl Layout {
    fn new(spec: &AttentionSpec) -> Layout {
        let (hd, group) = (spec.head_dim as u64, (spec.heads / spec.kv_heads) as u64);
        let ot = group * hd * TR;
        let m = ot + group * hd * TR;
        let l = m + group * TR;
        let k = l + group * TR;
        let v = k + KB * hd;
        let s = v + KB * hd;
        Layout { qt: 0, ot, m, l, k, v, s, end: s + KB * TR }
    }
}

pub fn scratch_bytes(spec: &AttentionSpec) -> usize {
    4 * Layout::new(spec).end as usize
}

/// The vectors of a tile's rows on this target: `l` lanes each, `u` of them.
fn shape(cg: &Cg) -> (u64, u64) {
    let l = cg.lanes.min(TILE_ROWS as u32) as u64;
    (l, TR / l)
}

/// Accumulators a loop keeps in registers (of 32 with AVX-512, else 16).
fn accumulators(cg: &Cg) -> u64 {
    if cg.lanes >= 16 { 16 } else { 8 }
}

/// Rows t0..t0 + 16, the query heads of KV head g; `sp` the thread's scratch.
pub fn emit<'ctx>(cg: &Cg<'ctx>, spec: &AttentionSpec, a: &Args<'ctx>, sp: PointerValue<'ctx>, t0: IntValue<'ctx>, g: IntValue<'ctx>) {
    let (hd, group) = (spec.head_dim as u64, (spec.heads / spec.kv_heads) as u64);
    let (qw, kvw) = (spec.heads as u64 * hd, spec.kv_heads as u64 * hd);
    let (l, u) = shape(cg);
    let ly = Layout::new(spec);
    let tile_rows = TileRows::of(cg, spec.window, a.pos, t0, l as u32);
    let base = cg.load_i32(a.base, t0);
    let q0 = cg.add(cg.mul(t0, cg.int(qw)), cg.mul(g, cg.int(group * hd))); // row t0's first query head of the group
    // Qᵀ · scale, transposed l rows × l dims at a time; Oᵀ = 0, max = NEG, sum = 0
    cg.for_each(cg.int(0), cg.int(group), 1, &mut |cg, h| {
        let hq = cg.add(q0, cg.mul(h, cg.int(hd))); // row t0's query head h
        let head = Head::of(cg, &ly, hd, h);
        for c in 0..hd / l {
            for v in 0..u {
                let rows = (0..l).map(|r| cg.fmul(cg.load(a.q, cg.add(hq, cg.int((v * l + r) * qw + c * l)), l as u32), cg.splat_const(spec.scale as f64, l as u32)));
                for (i, dim) in transpose(cg, rows.collect()).into_iter().enumerate() {
                    cg.store(sp, cg.add(head.qt, cg.int((c * l + i as u64) * TR + v * l)), dim);
                }
            }
        }
        for v in 0..u {
            cg.store(sp, cg.add(head.m, cg.int(v * l)), cg.splat_const(NEG, l as u32));
            cg.store(sp, cg.add(head.l, cg.int(v * l)), cg.vt(l as u32).const_zero());
        }
    });
    cg.for_each(cg.int(ly.ot), cg.int(ly.ot + group * hd * TR), l, &mut |cg, e| cg.store(sp, e, cg.vt(l as u32).const_zero()));
    let start = cg.mul(ok!(cg.b.build_int_unsigned_div(tile_rows.lo, cg.int(KB), "")), cg.int(KB));
    cg.for_each(start, cg.add(tile_rows.hi, cg.int(KB - 1)), KB, &mut |cg, s0| {
        // the block's keys and values in f32; rows past hi read row hi − 1 (masked), so stale
        // cache never enters
        let last = ok!(cg.b.build_int_sub(tile_rows.hi, cg.int(1), ""));
        cg.for_each(cg.int(0), cg.int(KB), 1, &mut |cg, i| {
            let e = cg.add(cg.mul(cg.add(base, cg.min(cg.add(s0, i), last)), cg.int(kvw)), cg.mul(g, cg.int(hd)));
            for c in 0..hd / l {
                let to = cg.add(cg.mul(i, cg.int(hd)), cg.int(c * l));
                cg.store(sp, cg.add(to, cg.int(ly.k)), load_kv(cg, a.kc, cg.add(e, cg.int(c * l)), l as u32, spec.kv));
                cg.store(sp, cg.add(to, cg.int(ly.v)), load_kv(cg, a.vc, cg.add(e, cg.int(c * l)), l as u32, spec.kv));
            }
        });
        let (masks, all_see) = (tile_rows.masks(cg, s0), tile_rows.all_see(cg, s0, KB));
        cg.for_each(cg.int(0), cg.int(group), 1, &mut |cg, h| {
            let head = Head::of(cg, &ly, hd, h);
            scores(cg, &ly, hd, &head, sp);
            cg.when(all_see, &mut |cg| softmax(cg, spec, &ly, &head, sp, None));
            cg.when(ok!(cg.b.build_not(all_see, "")), &mut |cg| softmax(cg, spec, &ly, &head, sp, Some(&masks)));
            values(cg, &ly, hd, &head, sp);
        });
    });
    // out rows: Oᵀ / sum, transposed back l dims × l rows at a time
    cg.for_each(cg.int(0), cg.int(group), 1, &mut |cg, h| {
        let hq = cg.add(q0, cg.mul(h, cg.int(hd)));
        let head = Head::of(cg, &ly, hd, h);
        let inv_l: Vec<_> = (0..u).map(|v| cg.fdiv(cg.splat_const(1.0, l as u32), cg.load(sp, cg.add(head.l, cg.int(v * l)), l as u32))).collect();
        for c in 0..hd / l {
            for v in 0..u {
                let dims = (0..l).map(|i| cg.fmul(cg.load(sp, cg.add(head.ot, cg.int((c * l + i) * TR + v * l)), l as u32), inv_l[v as usize]));
                for (r, row) in transpose(cg, dims.collect()).into_iter().enumerate() {
                    cg.store(a.out, cg.add(hq, cg.int((v * l + r as u64) * qw + c * l)), row);
                }
            }
        }
    });
}

/// Where query head h's parts of the scratch start (f32 elements): Qᵀ, Oᵀ, max and sum.
struct Head<'ctx> {
    qt: IntValue<'ctx>,
    ot: IntValue<'ctx>,
    m: IntValue<'ctx>,
    l: IntValue<'ctx>,
}

impl<'ctx> Head<'ctx> {
    fn of(cg: &Cg<'ctx>, ly: &Layout, hd: u64, h: IntValue<'ctx>) -> Head<'ctx> {
        let at = |start: u64, per_head: u64| cg.add(cg.int(start), cg.mul(h, cg.int(per_head)));
        Head { qt: at(ly.qt, hd * TR), ot: at(ly.ot, hd * TR), m: at(ly.m, TR), l: at(ly.l, TR) }
    }
}

/// S [KB][16] of head h: keys a few at a time (their sums in registers), over all dims.
fn scores<'ctx>(cg: &Cg<'ctx>, ly: &Layout, hd: u64, head: &Head<'ctx>, sp: PointerValue<'ctx>) {
    let (l, u) = shape(cg);
    let keys = accumulators(cg) / u;
    cg.for_each(cg.int(0), cg.int(KB), keys, &mut |cg, j0| {
        let init: Vec<BasicValueEnum> = (0..keys * u).map(|_| cg.vt(l as u32).const_zero().into()).collect();
        let (_, acc) = cg.for_carry(cg.int(0), cg.int(hd), 1, init, &mut |cg, d, acc| {
            let q: Vec<_> = (0..u).map(|v| cg.load(sp, cg.add(cg.mul(d, cg.int(TR)), cg.add(head.qt, cg.int(v * l))), l as u32)).collect();
            let key = |j: u64| cg.splat(cg.load_f32(sp, cg.add(cg.mul(cg.add(j0, cg.int(j)), cg.int(hd)), cg.add(d, cg.int(ly.k)))), l as u32);
            let k: Vec<_> = (0..keys).map(key).collect();
            acc.iter().enumerate().map(|(i, s)| cg.fma(q[i % u as usize], k[i / u as usize], s.into_vector_value()).into()).collect()
        });
        for (i, s) in acc.iter().enumerate() {
            let (j, v) = (i as u64 / u, i as u64 % u);
            cg.store(sp, cg.add(cg.mul(cg.add(j0, cg.int(j)), cg.int(TR)), cg.int(ly.s + v * l)), s.into_vector_value());
        }
    });
}

/// Head h's online softmax over the block's scores (lanes = rows), in two passes over them:
/// capped and masked scores and their max; then the running max raised where the block's exceeds
/// it by RAISE (Oᵀ and the sum rescaled), and the weights P written over the scores and summed.
fn softmax<'ctx>(cg: &Cg<'ctx>, spec: &AttentionSpec, ly: &Layout, head: &Head<'ctx>, sp: PointerValue<'ctx>, masks: Option<&[Mask<'ctx>]>) {
    let (l, u) = shape(cg);
    let (lanes, hd) = (l as u32, spec.head_dim as u64);
    let neg = cg.splat_const(NEG, lanes);
    let at = |k: IntValue<'ctx>, v: u64| cg.add(cg.mul(k, cg.int(TR)), cg.int(ly.s + v * l));
    let init: Vec<BasicValueEnum> = (0..u).map(|_| neg.into()).collect();
    let (_, block_max) = cg.for_carry(cg.int(0), cg.int(KB), 1, init, &mut |cg, k, mx| {
        (0..u)
            .map(|v| {
                let mut x = cg.load(sp, at(k, v), lanes);
                if let Some(cap) = spec.softcap {
                    x = cg.softcap(x, cap);
                }
                if let Some(m) = masks {
                    x = m[v as usize].apply(cg, k, x, neg);
                }
                cg.store(sp, at(k, v), x);
                max(cg, mx[v as usize].into_vector_value(), x).into()
            })
            .collect()
    });
    let (mut m_new, mut corr, mut rescale) = (vec![], vec![], vec![]);
    for (v, bmax) in block_max.iter().enumerate() {
        let m_old = cg.load(sp, cg.add(head.m, cg.int(v as u64 * l)), lanes);
        let raise = ok!(cg.b.build_float_compare(inkwell::FloatPredicate::OGT, bmax.into_vector_value(), cg.fadd(m_old, cg.splat_const(RAISE, lanes)), ""));
        let m = ok!(cg.b.build_select(raise, bmax.into_vector_value(), m_old, "")).into_vector_value();
        corr.push(cg.exp(cg.fsub(m_old, m)));
        m_new.push(m);
        // Oᵀ is still zero where no key was seen yet
        let seen = ok!(cg.b.build_float_compare(inkwell::FloatPredicate::OGT, m_old, neg, ""));
        rescale.push(ok!(cg.b.build_and(raise, seen, "")));
    }
    let any = rescale.iter().fold(cg.ctx.bool_type().const_zero(), |any, r| {
        let r = cg.intrinsic("llvm.vector.reduce.or", r.get_type(), &[(*r).into()]).into_int_value();
        ok!(cg.b.build_or(any, r, ""))
    });
    cg.when(any, &mut |cg| {
        cg.for_each(cg.int(0), cg.int(hd), 1, &mut |cg, d| {
            for (v, &c) in corr.iter().enumerate() {
                let o = cg.add(cg.mul(d, cg.int(TR)), cg.add(head.ot, cg.int(v as u64 * l)));
                cg.store(sp, o, cg.fmul(cg.load(sp, o, lanes), c));
            }
        });
    });
    let init: Vec<BasicValueEnum> = (0..u).map(|v| cg.fmul(cg.load(sp, cg.add(head.l, cg.int(v * l)), lanes), corr[v as usize]).into()).collect();
    let (_, sums) = cg.for_carry(cg.int(0), cg.int(KB), 1, init, &mut |cg, k, sum| {
        (0..u)
            .map(|v| {
                let p = cg.exp(cg.fsub(cg.load(sp, at(k, v), lanes), m_new[v as usize]));
                let p = masks.map_or(p, |m| m[v as usize].apply(cg, k, p, cg.vt(lanes).const_zero()));
                cg.store(sp, at(k, v), p);
                cg.fadd(sum[v as usize].into_vector_value(), p).into()
            })
            .collect()
    });
    for v in 0..u {
        cg.store(sp, cg.add(head.m, cg.int(v * l)), m_new[v as usize]);
        cg.store(sp, cg.add(head.l, cg.int(v * l)), sums[v as usize].into_vector_value());
    }
}

/// Oᵀ of head h += Σ_key V[key] · P[key]: dims a few at a time (their outputs in registers), over the block's keys.
fn values<'ctx>(cg: &Cg<'ctx>, ly: &Layout, hd: u64, head: &Head<'ctx>, sp: PointerValue<'ctx>) {
    let (l, u) = shape(cg);
    let dims = accumulators(cg) / u;
    cg.for_each(cg.int(0), cg.int(hd), dims, &mut |cg, d0| {
        let o = |i: u64| cg.add(cg.mul(cg.add(d0, cg.int(i / u)), cg.int(TR)), cg.add(head.ot, cg.int(i % u * l)));
        let init: Vec<BasicValueEnum> = (0..dims * u).map(|i| cg.load(sp, o(i), l as u32).into()).collect();
        let (_, acc) = cg.for_carry(cg.int(0), cg.int(KB), 1, init, &mut |cg, k, acc| {
            let p: Vec<_> = (0..u).map(|v| cg.load(sp, cg.add(cg.mul(k, cg.int(TR)), cg.int(ly.s + v * l)), l as u32)).collect();
            let x: Vec<_> = (0..dims).map(|e| cg.splat(cg.load_f32(sp, cg.add(cg.mul(k, cg.int(hd)), cg.add(d0, cg.int(ly.v + e)))), l as u32)).collect();
            acc.iter().enumerate().map(|(i, a)| cg.fma(p[i % u as usize], x[i / u as usize], a.into_vector_value()).into()).collect()
        });
        acc.iter().enumerate().for_each(|(i, a)| cg.store(sp, o(i as u64), a.into_vector_value()));
    });
}
