//! Attention kernels: causal grouped-query attention over the KV cache. A work item is one KV head
//! with all the query heads that share it, so each cache row is loaded (and converted from f16)
//! once for the group:
//! - passes below TILE_ROWS rows (decode, small batches): one part (of PARTS) of one row's cache
//!   rows, rows in zigzag order (first, last, second, …); the last part of a row to finish
//!   combines the parts' softmax states, so two threads share even one row's few KV heads (a
//!   row with fewer than PARTS · PART_ROWS visible cache rows uses fewer parts, the rest empty);
//! - larger passes where the runtime hands the kernel its scratch: a tile of TILE_ROWS rows in
//!   zigzag tile order, so that contiguous pieces of work cost about the same under the causal
//!   mask, on AMX tiles (attention_amx.rs) or vector registers (attention_flash.rs) where they
//!   apply, else row by row; without scratch (the server's batch-invariant kernels): one row in
//!   zigzag row order, its parts in turn — the same parts, so that a row's result never depends
//!   on the pass it is in.
//!
//! Query t sees its sequence's cache rows 0..=pos[t] (from base[t]), or with a window only
//! pos[t] - window < row <= pos[t] (the loop starts at the block holding the first of them).
//! Online softmax over blocks of `lanes` cache rows: the block's keys are converted to f32 once
//! into a small buffer; per query head, the block's scores form one vector (each row's dot
//! product left as a vector, then all reduced together by a transposing tree), so masking,
//! soft-capping (cap · tanh(s / cap)) and exp run vectorised and no score buffer is needed; then
//! each value row is converted once, in registers, and weighted into all the heads' outputs.
//! Heads are a run-time loop and values go a vector of columns at a time, so that no more is
//! live than the registers hold (with every head unrolled, LLVM kept each key vector for all
//! the heads and spilled them: decode on a Zen 3 machine after 512 tokens 1.09×, after 3,841 1.19×).
use inkwell::values::{IntValue, PointerValue, VectorValue};
use inkwell::{AtomicOrdering, AtomicRMWBinOp};
use inkwell::types::VectorType;

use runtime::plan::{PARTS, TILE_ROWS};

use super::{attention_amx, attention_flash, attention_tile};
use super::codegen::{ok, Cg};
use super::copy::{kv_at, load_kv};
use super::kernel::AttentionSpec;

/// The widest power-of-two vector (≤ the target's) that divides `n`.
pub fn lanes_dividing(cg: &Cg, n: usize) -> u32 {
    let mut l = cg.lanes;
    while l > 1 && !n.is_multiple_of(l as usize) {
        l /= 2;
    }
    l
}

const NEG: f64 = -1e30;
/// How far ahead of the block's rows the key loop asks for cache rows.
const PREFETCH_ROWS: u64 = 64;
/// Cache rows a part takes at least: a part's own cost (its start, its share of the combine)
/// outweighs the few blocks of a shorter one.
const PART_ROWS: u64 = 64;

/// f32 of one part's result: o [group][hd] (not yet divided by the sum), then max [group], sum [group].
fn part_floats(spec: &AttentionSpec) -> u64 {
    let group = (spec.heads / spec.kv_heads) as u64;
    group * (spec.head_dim as u64 + 2)
}

/// Bytes of the workspace of passes below TILE_ROWS rows: parts' results [TILE_ROWS][kv_heads]
/// [PARTS] | counters of finished parts [TILE_ROWS][kv_heads] i32 (zero between steps).
pub fn workspace_bytes(spec: &AttentionSpec) -> usize {
    (counters_at(spec) + TILE_ROWS as u64 * spec.kv_heads as u64 * 4) as usize
}

/// Scratch a thread hands the kernel for its tile path on a target with `features` (0: none).
pub fn scratch_bytes(features: &[String], spec: &AttentionSpec) -> usize {
    match (attention_amx::supports(features, spec), attention_flash::supports(features, spec)) {
        (true, _) => attention_amx::scratch_bytes(spec),
        (_, true) => attention_flash::scratch_bytes(spec),
        _ => 0,
    }
}

/// Where the workspace's counters start.
fn counters_at(spec: &AttentionSpec) -> u64 {
    (TILE_ROWS * spec.kv_heads * PARTS) as u64 * part_floats(spec) * 4
}

pub fn emit<'ctx>(cg: &mut Cg<'ctx>, name: &str, spec: &AttentionSpec) {
    let ka = cg.kernel(name);
    let [q, kc, vc, pos, base, out, work] = [0, 1, 2, 3, 4, 5, 6].map(|i| cg.arg(&ka, i));
    let args = Args { q, kc, vc, pos, base, out };
    let lv = lanes_dividing(cg, spec.head_dim);
    let (sb, hd, kvh, parts, pf) = (cg.lanes as u64, spec.head_dim as u64, spec.kv_heads as u64, PARTS as u64, part_floats(spec));
    // the block's keys in f32 [sb, hd], its softmax weights [group][sb], the scaled queries
    // [group][hd] and the outputs' rescaling [group]; the parts' results of one row (tiles off AMX)
    let alloc = |n: u64| ok!(cg.b.build_array_alloca(cg.f32, cg.int(n), ""));
    let group = (spec.heads / spec.kv_heads) as u64;
    let bufs = Bufs { kb: alloc(sb * hd), wb: alloc(group * sb), qs: alloc(group * hd), corr: alloc(group), lv };
    let row_parts = alloc(parts * pf);
    let many = ok!(cg.b.build_int_compare(inkwell::IntPredicate::SGE, ka.rows, cg.int(TILE_ROWS as u64), ""));
    let scratch = ok!(cg.b.build_is_not_null(ka.scratch, ""));
    let tiled = ok!(cg.b.build_and(many, scratch, ""));
    // row t of KV head g whole: its used parts in turn, then combined
    let whole_row = |cg: &Cg<'ctx>, t: IntValue<'ctx>, g: IntValue<'ctx>| {
        let rows = Parts::of(cg, spec, &args, t);
        cg.for_each(cg.int(0), rows.used, 1, &mut |cg, part| row_part(cg, spec, &args, &bufs, &rows, g, part, cg.byte_ptr(row_parts, cg.mul(part, cg.int(pf * 4)))));
        combine(cg, spec, lv, row_parts, args.out, &rows, g);
    };
    // items (row, kv head, part) in zigzag row order; a row's last used part to finish combines
    // them (a lone part at once); an empty part does nothing
    cg.when(ok!(cg.b.build_not(many, "")), &mut |cg| {
        cg.for_each(ka.begin, ka.end, 1, &mut |cg, u| {
            let part = ok!(cg.b.build_int_unsigned_rem(u, cg.int(parts), ""));
            let item = ok!(cg.b.build_int_unsigned_div(u, cg.int(parts), ""));
            let g = ok!(cg.b.build_int_unsigned_rem(item, cg.int(kvh), ""));
            let rows = Parts::of(cg, spec, &args, zigzag(cg, ok!(cg.b.build_int_unsigned_div(item, cg.int(kvh), "")), ka.rows));
            cg.when(cg.lt(part, rows.used), &mut |cg| {
                let slot = cg.add(cg.mul(rows.t, cg.int(kvh)), g);
                let results = cg.byte_ptr(work, cg.mul(slot, cg.int(parts * pf * 4)));
                row_part(cg, spec, &args, &bufs, &rows, g, part, cg.byte_ptr(results, cg.mul(part, cg.int(pf * 4))));
                let alone = ok!(cg.b.build_int_compare(inkwell::IntPredicate::EQ, rows.used, cg.int(1), ""));
                cg.when(alone, &mut |cg| combine(cg, spec, lv, results, args.out, &rows, g));
                cg.when(ok!(cg.b.build_not(alone, "")), &mut |cg| {
                    let counter = cg.byte_ptr(work, cg.add(cg.int(counters_at(spec)), cg.mul(slot, cg.int(4))));
                    let done = ok!(cg.b.build_atomicrmw(AtomicRMWBinOp::Add, counter, cg.i32.const_int(1, false), AtomicOrdering::AcquireRelease));
                    let used = ok!(cg.b.build_int_truncate(rows.used, cg.i32, ""));
                    let last = ok!(cg.b.build_int_compare(inkwell::IntPredicate::EQ, ok!(cg.b.build_int_add(done, cg.i32.const_int(1, false), "")), used, ""));
                    cg.when(last, &mut |cg| {
                        combine(cg, spec, lv, results, args.out, &rows, g);
                        ok!(cg.b.build_store(counter, cg.i32.const_zero()));
                    });
                });
            });
        });
    });
    // without scratch (the server's batch-invariant passes): items (row, kv head) in zigzag row
    // order, each row whole (the same parts, so a row's result does not depend on its pass)
    cg.when(ok!(cg.b.build_and(many, ok!(cg.b.build_not(scratch, "")), "")), &mut |cg| {
        cg.for_each(ka.begin, ka.end, 1, &mut |cg, item| {
            let g = ok!(cg.b.build_int_unsigned_rem(item, cg.int(kvh), ""));
            whole_row(cg, zigzag(cg, ok!(cg.b.build_int_unsigned_div(item, cg.int(kvh), "")), ka.rows), g);
        });
    });
    // items (tile of TILE_ROWS rows, kv head) in zigzag tile order: on AMX tiles or vector
    // registers where it can, else row by row, each row whole
    cg.when(tiled, &mut |cg| {
        let tr = TILE_ROWS as u64;
        let tiles = ok!(cg.b.build_int_unsigned_div(cg.add(ka.rows, cg.int(tr - 1)), cg.int(tr), ""));
        cg.for_each(ka.begin, ka.end, tr, &mut |cg, u| {
            let item = ok!(cg.b.build_int_unsigned_div(u, cg.int(tr), ""));
            let g = ok!(cg.b.build_int_unsigned_rem(item, cg.int(kvh), ""));
            let t0 = cg.mul(zigzag(cg, ok!(cg.b.build_int_unsigned_div(item, cg.int(kvh), "")), tiles), cg.int(tr));
            let (amx, flash) = (attention_amx::supports(&cg.features, spec), attention_flash::supports(&cg.features, spec));
            let on_tiles = match amx || flash {
                true => attention_tile::applies(cg, &ka, &args, t0),
                false => cg.ctx.bool_type().const_zero(),
            };
            cg.when(on_tiles, &mut |cg| match amx {
                true => attention_amx::emit(cg, spec, &args, ka.scratch, t0, g),
                false => attention_flash::emit(cg, spec, &args, ka.scratch, t0, g),
            });
            cg.when(ok!(cg.b.build_not(on_tiles, "")), &mut |cg| {
                let end = cg.min(cg.add(t0, cg.int(tr)), ka.rows);
                cg.for_each(t0, end, 1, &mut |cg, t| whole_row(cg, t, g));
            });
        });
    });
    cg.ret();
}

/// The kernel's arguments (but the workspace).
#[derive(Clone, Copy)]
pub struct Args<'ctx> {
    pub q: PointerValue<'ctx>,
    pub kc: PointerValue<'ctx>,
    pub vc: PointerValue<'ctx>,
    pub pos: PointerValue<'ctx>,
    pub base: PointerValue<'ctx>,
    pub out: PointerValue<'ctx>,
}

/// The one-row path's block buffers (see `emit`) and its vector width over head_dim.
#[derive(Clone, Copy)]
struct Bufs<'ctx> {
    kb: PointerValue<'ctx>,
    wb: PointerValue<'ctx>,
    qs: PointerValue<'ctx>,
    corr: PointerValue<'ctx>,
    lv: u32,
}

/// Row t's visible cache rows cut into parts (of PARTS): `used` parts of PART_ROWS cache rows or
/// more (between 1 and PARTS, from the row's own position: so a row's result does not depend on
/// its pass), the parts past `used` empty.
#[derive(Clone, Copy)]
struct Parts<'ctx> {
    t: IntValue<'ctx>,
    /// the row's position and its sequence's first cache row
    p: IntValue<'ctx>,
    b: IntValue<'ctx>,
    /// visible cache rows: first..seen
    first: IntValue<'ctx>,
    seen: IntValue<'ctx>,
    /// the blocks holding them: n from blocks_start
    blocks_start: IntValue<'ctx>,
    n: IntValue<'ctx>,
    used: IntValue<'ctx>,
}

impl<'ctx> Parts<'ctx> {
    fn of(cg: &Cg<'ctx>, spec: &AttentionSpec, a: &Args<'ctx>, t: IntValue<'ctx>) -> Parts<'ctx> {
        let sb = cg.lanes as u64; // cache rows per block
        let (p, b) = (cg.load_i32(a.pos, t), cg.load_i32(a.base, t));
        let seen = cg.add(p, cg.int(1));
        let blocks_end = ok!(cg.b.build_int_unsigned_div(cg.add(seen, cg.int(sb - 1)), cg.int(sb), ""));
        // the first visible row (0 without a window), and the block it is in
        let first = match spec.window {
            Some(w) => {
                let past = cg.lt(cg.int(w as u64), seen);
                ok!(cg.b.build_select(past, ok!(cg.b.build_int_sub(seen, cg.int(w as u64), "")), cg.int(0), "")).into_int_value()
            }
            None => cg.int(0),
        };
        let blocks_start = ok!(cg.b.build_int_unsigned_div(first, cg.int(sb), ""));
        let n = ok!(cg.b.build_int_sub(blocks_end, blocks_start, ""));
        let used = cg.min(cg.int(PARTS as u64), ok!(cg.b.build_int_unsigned_div(cg.mul(n, cg.int(sb)), cg.int(PART_ROWS), "")));
        let used = ok!(cg.b.build_select(cg.lt(used, cg.int(1)), cg.int(1), used, "")).into_int_value();
        Parts { t, p, b, first, seen, blocks_start, n, used }
    }

    /// The first cache row of part `part`: its blocks are [n · part / used, n · (part + 1) / used)
    /// of the n from blocks_start.
    fn start(&self, cg: &Cg<'ctx>, part: IntValue<'ctx>) -> IntValue<'ctx> {
        let from = ok!(cg.b.build_int_unsigned_div(cg.mul(self.n, cg.min(part, self.used)), self.used, ""));
        cg.mul(cg.add(self.blocks_start, from), cg.int(cg.lanes as u64))
    }
}

/// Part `part` (< rows.used, in whole blocks of cache rows) of query row t's heads of KV head g:
/// online softmax over its blocks into `res` (o [group][hd], max [group], sum [group]). Per block,
/// the heads' scores in a loop over heads (one head's sb sums and its query in registers, the
/// keys read from the block buffer as memory operands), then the values by columns of lv: the
/// heads' outputs of those columns in registers, each value row's columns converted once.
#[allow(clippy::too_many_arguments)]
fn row_part<'ctx>(cg: &Cg<'ctx>, spec: &AttentionSpec, a: &Args<'ctx>, bufs: &Bufs<'ctx>, rows: &Parts<'ctx>, g: IntValue<'ctx>, part: IntValue<'ctx>, res: PointerValue<'ctx>) {
    let AttentionSpec { heads, kv_heads, head_dim: hd, scale, softcap, kv, .. } = spec.clone();
    let Bufs { kb, wb, qs, corr, lv } = *bufs;
    let Args { q, kc, vc, .. } = *a;
    let Parts { t, p, b, first, seen, .. } = *rows;
    let nv = hd as u64 / lv as u64;
    let (qw, kvw, group, hd) = ((heads * hd) as u64, (kv_heads * hd) as u64, (heads / kv_heads) as u64, hd as u64);
    let (os, ms, ls) = (res, cg.byte_ptr(res, cg.int(4 * group * hd)), cg.byte_ptr(res, cg.int(4 * group * (hd + 1))));
    let sb = cg.lanes as u64; // cache rows per block
    let kv_off = cg.mul(g, cg.int(hd));
    let q_off = cg.add(cg.mul(t, cg.int(qw)), cg.mul(g, cg.int(group * hd))); // the group's first query head
    for h in 0..group {
        cg.store(ms, cg.int(h), cg.splat_const(NEG, 1));
        cg.store(ls, cg.int(h), cg.splat_const(0.0, 1));
        for v in 0..nv {
            let at = h * hd + v * lv as u64;
            cg.store(os, cg.int(at), cg.vt(lv).const_zero());
            cg.store(qs, cg.int(at), cg.fmul(cg.load(q, cg.add(q_off, cg.int(at)), lv), cg.splat_const(scale as f64, lv)));
        }
    }
    // the cache index of row s at KV head g; rows past pos read row pos (masked below), so stale
    // cache contents never enter a sum
    let cache_row = |cg: &Cg<'ctx>, s: IntValue<'ctx>| cg.add(cg.mul(cg.add(b, cg.min(s, p)), cg.int(kvw)), kv_off);
    // the cache lines of row s of both caches, asked for ahead of their use: a part's first
    // PREFETCH_ROWS rows at its start, then PREFETCH_ROWS rows ahead of the block
    let prefetch = |cg: &Cg<'ctx>, s: IntValue<'ctx>| {
        let row = cache_row(cg, s);
        for line in (0..kv.row_bytes(hd as usize) as u64).step_by(64) {
            for cache in [kc, vc] {
                cg.prefetch(cg.byte_ptr(kv_at(cg, cache, row, kv), cg.int(line)));
            }
        }
    };
    let (start, end) = (rows.start(cg, part), rows.start(cg, cg.add(part, cg.int(1))));
    cg.for_each(start, cg.min(cg.add(start, cg.int(PREFETCH_ROWS)), end), 1, &mut |cg, s| prefetch(cg, s));
    let value_heads = (registers(cg) - 4).min(group); // outputs in registers beside a value and a weight
    cg.for_each(start, end, sb, &mut |cg, s0| {
        let row_at = |cg: &Cg<'ctx>, i: u64| cache_row(cg, cg.add(s0, cg.int(i))); // the block's row i
        // the block's keys in f32, by a loop: the buffer stays in memory, not in 4·sb registers
        cg.for_each(cg.int(0), cg.int(sb), 1, &mut |cg, i| {
            prefetch(cg, cg.add(s0, cg.add(i, cg.int(PREFETCH_ROWS))));
            let row = cache_row(cg, cg.add(s0, i));
            for v in 0..nv {
                cg.store(kb, cg.add(cg.mul(i, cg.int(hd)), cg.int(v * lv as u64)), load_kv(cg, kc, cg.add(row, cg.int(v * lv as u64)), lv, kv));
            }
        });
        let visible = visible_rows(cg, s0, sb, first, seen);
        // per query head: the block's scores, the running max and sum, its weights into wb
        // [group][sb] and its outputs' rescaling e^(old max − new max) into corr [group]
        cg.for_each(cg.int(0), cg.int(group), 1, &mut |cg, h| {
            let qh = cg.mul(h, cg.int(hd));
            let mut dots = vec![cg.vt(lv).const_zero(); sb as usize];
            for v in 0..nv {
                let qv = cg.load(qs, cg.add(qh, cg.int(v * lv as u64)), lv);
                for (i, d) in dots.iter_mut().enumerate() {
                    *d = cg.fma(qv, cg.load(kb, cg.int(i as u64 * hd + v * lv as u64), lv), *d);
                }
            }
            let mut scores = hsums(cg, &dots); // [sb]
            if let Some(cap) = softcap {
                scores = cg.softcap(scores, cap);
            }
            let scores = ok!(cg.b.build_select(visible, scores, cg.splat_const(NEG, sb as u32), "")).into_vector_value();
            let (m, l) = (cg.load_f32(ms, h), cg.load_f32(ls, h));
            let bmax = cg.hmax(scores);
            let m_new = cg.select(cg.fgt(bmax, m), bmax, m);
            let c = cg.extract(cg.exp(cg.fsub(cg.splat(m, 1), cg.splat(m_new, 1))), 0);
            let w = cg.exp(cg.fsub(scores, cg.splat(m_new, sb as u32)));
            let l_new = ok!(cg.b.build_float_add(ok!(cg.b.build_float_mul(l, c, "")), cg.hsum(w), ""));
            cg.store(ms, h, cg.splat(m_new, 1));
            cg.store(ls, h, cg.splat(l_new, 1));
            cg.store(corr, h, cg.splat(c, 1));
            cg.store(wb, cg.mul(h, cg.int(sb)), w);
        });
        // values, lv columns at a time: the heads' outputs of those columns rescaled, then each
        // row's columns converted once and weighted into every head's output, rows in order
        for v in 0..nv {
            let col = v * lv as u64;
            for hs in (0..group).collect::<Vec<_>>().chunks(value_heads as usize) {
                let scaled = |cg: &Cg<'ctx>, at: PointerValue<'ctx>, i: u64| cg.splat(cg.load_f32(at, cg.int(i)), lv);
                let mut o: Vec<VectorValue> = hs.iter().map(|&h| cg.fmul(cg.load(os, cg.int(h * hd + col), lv), scaled(cg, corr, h))).collect();
                for i in 0..sb {
                    let x = load_kv(cg, vc, cg.add(row_at(cg, i), cg.int(col)), lv, kv);
                    for (o, &h) in o.iter_mut().zip(hs) {
                        *o = cg.fma(scaled(cg, wb, h * sb + i), x, *o);
                    }
                }
                for (&o, &h) in o.iter().zip(hs) {
                    cg.store(os, cg.int(h * hd + col), o);
                }
            }
        }
    });
}

/// Vector registers of the target (AVX-512: 32, else 16).
fn registers(cg: &Cg) -> u64 {
    if cg.lanes >= 16 { 32 } else { 16 }
}

/// Row t's heads of KV head g from its used parts' results at `res`, in order: each part's output
/// and sum weighted by e^(its max − the max of all), the output divided by the sum. (A part past
/// `used` is read as empty, whatever its memory holds: max NEG, sum and output 0.)
fn combine<'ctx>(cg: &Cg<'ctx>, spec: &AttentionSpec, lv: u32, res: PointerValue<'ctx>, out: PointerValue<'ctx>, rows: &Parts<'ctx>, g: IntValue<'ctx>) {
    let (hd, group, pf) = (spec.head_dim as u64, (spec.heads / spec.kv_heads) as u64, part_floats(spec));
    let q_off = cg.add(cg.mul(rows.t, cg.int((spec.heads * spec.head_dim) as u64)), cg.mul(g, cg.int(group * hd)));
    let valid: Vec<IntValue> = (0..PARTS as u64).map(|p| cg.lt(cg.int(p), rows.used)).collect();
    let or = |p: usize, x: inkwell::values::BasicValueEnum<'ctx>, empty: inkwell::values::BasicValueEnum<'ctx>| ok!(cg.b.build_select(valid[p], x, empty, ""));
    for h in 0..group {
        let (ms, ls): (Vec<_>, Vec<_>) = (0..PARTS)
            .map(|p| {
                let at = p as u64 * pf + group * hd + h;
                let m = or(p, cg.load_f32(res, cg.int(at)).into(), cg.f32.const_float(NEG).into()).into_float_value();
                (m, or(p, cg.load_f32(res, cg.int(at + group)).into(), cg.f32.const_zero().into()).into_float_value())
            })
            .unzip();
        let m = ms.iter().skip(1).fold(ms[0], |m, &x| cg.select(cg.fgt(x, m), x, m));
        let w: Vec<_> = ms.iter().map(|&x| cg.splat(cg.extract(cg.exp(cg.fsub(cg.splat(x, 1), cg.splat(m, 1))), 0), lv)).collect();
        let l = (0..PARTS).fold(cg.vt(lv).const_zero(), |s, p| cg.fma(w[p], cg.splat(ls[p], lv), s));
        let inv_l = cg.fdiv(cg.splat_const(1.0, lv), l);
        for v in 0..hd / lv as u64 {
            let o = (0..PARTS).fold(cg.vt(lv).const_zero(), |o, p| {
                let x = or(p, cg.load(res, cg.int(p as u64 * pf + h * hd + v * lv as u64), lv).into(), cg.vt(lv).const_zero().into()).into_vector_value();
                cg.fma(w[p], x, o)
            });
            cg.store(out, cg.add(q_off, cg.int(h * hd + v * lv as u64)), cg.fmul(o, inv_l));
        }
    }
}

/// Row of item i in 0..rows: i = 0, 1, 2, 3, … gives rows 0, rows − 1, 1, rows − 2, ….
fn zigzag<'ctx>(cg: &Cg<'ctx>, i: IntValue<'ctx>, rows: IntValue<'ctx>) -> IntValue<'ctx> {
    let half = ok!(cg.b.build_right_shift(i, cg.int(1), false, ""));
    let odd = ok!(cg.b.build_int_compare(inkwell::IntPredicate::NE, ok!(cg.b.build_and(i, cg.int(1), "")), cg.int(0), ""));
    let from_end = ok!(cg.b.build_int_sub(ok!(cg.b.build_int_sub(rows, cg.int(1), "")), half, ""));
    ok!(cg.b.build_select(odd, from_end, half, "")).into_int_value()
}

/// Which of the sb rows from s0 are visible: first <= s < seen.
fn visible_rows<'ctx>(cg: &Cg<'ctx>, s0: IntValue<'ctx>, sb: u64, first: IntValue<'ctx>, seen: IntValue<'ctx>) -> VectorValue<'ctx> {
    let splat = |x: IntValue<'ctx>| cg.splat_int(x, sb as u32);
    let steps = VectorType::const_vector(&(0..sb).map(|i| cg.i64.const_int(i, false)).collect::<Vec<_>>());
    let rows = ok!(cg.b.build_int_add(splat(s0), steps, ""));
    let below = ok!(cg.b.build_int_compare(inkwell::IntPredicate::SLT, rows, splat(seen), ""));
    let from = ok!(cg.b.build_int_compare(inkwell::IntPredicate::SGE, rows, splat(first), ""));
    ok!(cg.b.build_and(below, from, ""))
}

/// The lane sums of `vs` (n vectors of n lanes, or of fewer: then one by one) as one vector:
/// lane i = Σ vs[i]. As a tree: each level halves the lanes every input still owns and packs
/// two vectors into one (two shuffles and an add), then one shuffle restores row order.
fn hsums<'ctx>(cg: &Cg<'ctx>, vs: &[VectorValue<'ctx>]) -> VectorValue<'ctx> {
    let n = vs.len() as u32;
    let lanes = vs[0].get_type().get_size();
    if lanes != n {
        return (0..n).fold(cg.vt(n).get_undef(), |acc, i| cg.insert(acc, cg.hsum(vs[i as usize]), cg.int(i as u64)));
    }
    let idx = |v: Vec<u32>| VectorType::const_vector(&v.into_iter().map(|i| cg.i32.const_int(i as u64, false)).collect::<Vec<_>>());
    // each vector: its lanes in groups of `width`, group k owned by input owner[k]
    let mut level: Vec<(VectorValue, Vec<u32>)> = vs.iter().enumerate().map(|(i, &v)| (v, vec![i as u32])).collect();
    let mut width = n;
    while level.len() > 1 {
        let half = width / 2;
        level = level
            .chunks(2)
            .map(|pair| {
                let ((x, ox), (y, oy)) = (&pair[0], &pair[1]);
                let groups = ox.len() as u32;
                // new group k (width half): lanes of x's group k (k < groups) or y's, low or high half
                let pick = |high: u32| idx((0..2 * groups).flat_map(|k| (0..half).map(move |e| if k < groups { 0 } else { n } + (k % groups) * width + high * half + e)).collect());
                let lo = ok!(cg.b.build_shuffle_vector(*x, *y, pick(0), ""));
                let hi = ok!(cg.b.build_shuffle_vector(*x, *y, pick(1), ""));
                (cg.fadd(lo, hi), [ox.clone(), oy.clone()].concat())
            })
            .collect();
        width = half;
    }
    let (v, owner) = level.pop().unwrap();
    let order: Vec<u32> = (0..n).map(|i| owner.iter().position(|&o| o == i).unwrap() as u32).collect();
    ok!(cg.b.build_shuffle_vector(v, v.get_type().get_undef(), idx(order), ""))
}
