//! The attention kernel (lower/attention.rs) against its definition, computed here in f64 from the
//! cache's stored values: causal grouped-query attention with sliding windows and soft-capping,
//! over f16 and Q8_0 caches, for passes of 1, 7, 16 and 40 rows from a cached prefix, rows of two
//! sequences in one pass, rows whose cache rows take 1, 2 or 4 parts, the work range cut as the
//! executor cuts it; built for this CPU, AVX2 and SSE. Row by row (f32 products)
//! it is within 1e-4 of the definition. Given scratch, tiles of 16 rows of one sequence take a
//! tile path: on vector registers (lower/attention_flash.rs), within 1e-4 too; on AMX where it is
//! built and granted (lower/attention_amx.rs), within the rounding of bf16 queries, keys, values
//! and weights of the same definition with bf16-rounded q, k and v.
use compiler::lower::kernel::{AttentionSpec, KernelSet, KernelSpec};
use compiler::lower::target::TargetCpu;
use half::f16;
use runtime::plan::{KvDtype, Work};

fn next(state: &mut u64) -> f32 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % 2001) as f32 / 1000.0 - 1.0
}

/// A cache of `rows` rows of `width` values in ±1 (keys scaled by `gain`): its bytes in `kv` and
/// the values they hold.
fn cache(kv: KvDtype, rows: usize, width: usize, gain: f32, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let mut s = seed;
    let x: Vec<f32> = (0..rows * width).map(|_| gain * next(&mut s)).collect();
    match kv {
        KvDtype::F16 => (x.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(), x.iter().map(|v| f16::from_f32(*v).to_f32()).collect()),
        KvDtype::Q8_0 => {
            let (mut bytes, mut values) = (vec![], vec![]);
            for b in x.chunks(32) {
                let d = f16::from_f32(b.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0);
                bytes.extend(d.to_le_bytes());
                for v in b {
                    let q = (v / d.to_f32()).round_ties_even() as i8;
                    bytes.push(q as u8);
                    values.push(q as f32 * d.to_f32());
                }
            }
            (bytes, values)
        }
        KvDtype::F32 => (x.iter().flat_map(|v| v.to_le_bytes()).collect(), x),
    }
}

/// out [rows, heads · hd] by the definition, in f64; with `bf16`, q, k and v rounded to bf16 first.
fn reference(spec: &AttentionSpec, q: &[f32], k: &[f32], v: &[f32], pos: &[i32], base: &[i32], bf16: bool) -> Vec<f32> {
    let AttentionSpec { heads, kv_heads, head_dim: hd, scale, window, softcap, .. } = spec.clone();
    let r = |x: f32| if bf16 { half::bf16::from_f32(x).to_f64() } else { x as f64 };
    let mut out = vec![0f32; pos.len() * heads * hd];
    for (t, (&p, &b)) in pos.iter().zip(base).enumerate() {
        let (p, b) = (p as usize, b as usize);
        let first = window.map_or(0, |w| (p + 1).saturating_sub(w));
        for h in 0..heads {
            let g = h / (heads / kv_heads);
            let at = |j: usize, d: usize| (b + j) * kv_heads * hd + g * hd + d;
            let scores: Vec<f64> = (first..=p)
                .map(|j| {
                    let s = (0..hd).map(|d| r(q[t * heads * hd + h * hd + d]) * r(k[at(j, d)])).sum::<f64>() * scale as f64;
                    softcap.map_or(s, |c| c as f64 * (s / c as f64).tanh())
                })
                .collect();
            let m = scores.iter().fold(f64::MIN, |a, &b| a.max(b));
            let w: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f64 = w.iter().sum();
            for d in 0..hd {
                out[t * heads * hd + h * hd + d] = ((first..=p).zip(&w).map(|(j, w)| w * r(v[at(j, d)])).sum::<f64>() / sum) as f32;
            }
        }
    }
    out
}

#[test]
fn attention_computes_its_definition() {
    let amx = runtime::cpu::amx_granted();
    let specs = [
        AttentionSpec { heads: 9, kv_heads: 3, head_dim: 64, scale: 0.125, window: None, softcap: None, kv: KvDtype::F16 },
        AttentionSpec { heads: 4, kv_heads: 2, head_dim: 32, scale: 0.2, window: Some(5), softcap: None, kv: KvDtype::Q8_0 },
        // the exact path's cache
        AttentionSpec { heads: 9, kv_heads: 3, head_dim: 64, scale: 0.125, window: None, softcap: None, kv: KvDtype::F32 },
        AttentionSpec { heads: 2, kv_heads: 1, head_dim: 128, scale: 0.09, window: Some(37), softcap: Some(1.5), kv: KvDtype::F16 },
        // Qwen2.5-0.5B's groups of 7: the value loop takes the heads in several chunks
        AttentionSpec { heads: 14, kv_heads: 2, head_dim: 64, scale: 0.125, window: None, softcap: None, kv: KvDtype::F16 },
    ];
    let context = 1200;
    // this CPU's widest vectors (and AMX), AVX2's, SSE's
    for (i, (spec, target)) in specs.iter().flat_map(|s| ["host", "x86-64-v3", "x86-64"].map(|t| (s, t))).enumerate() {
        let cpu = TargetCpu::resolve(target).unwrap();
        // the tile path: AMX's where built (and taken only where granted), else vector registers'
        let on_amx = compiler::lower::attention_amx::supports(&cpu.features, spec);
        let tiles = if on_amx { amx } else { compiler::lower::attention_flash::supports(&cpu.features, spec) };
        if target == "host" && on_amx && !amx {
            eprintln!("{spec:?}: AMX tiles built but not granted here: the tile path is not tested");
        }
        let mut kernels = KernelSet::default();
        let name = kernels.intern(KernelSpec::Attention(spec.clone()));
        let (_, code) = compiler::lower::build(&kernels, &cpu).unwrap();
        let loaded = runtime::kernels::Kernels::load(&code, &[&name]).unwrap();
        let (qw, kvw) = (spec.heads * spec.head_dim, spec.kv_heads * spec.head_dim);
        // two slots of `context` rows; keys large enough that the softmax is far from uniform
        let (kb, k) = cache(spec.kv, 2 * context, kvw, 4.0, 11 + i as u64);
        let (vb, v) = cache(spec.kv, 2 * context, kvw, 1.0, 12 + i as u64);
        let mut scratch = vec![0u64; compiler::lower::attention::scratch_bytes(&cpu.features, spec).div_ceil(8)];
        let mut workspace = vec![0u64; compiler::lower::attention::workspace_bytes(spec).div_ceil(8)];
        // (rows: (slot, position)), one sequence from a cached prefix, or two interleaved in blocks
        let passes: Vec<Vec<(i32, i32)>> = vec![
            vec![(0, 93)],
            // rows of 65, 256, 301 and 1101 visible cache rows: 1, 4, 4 and 4 parts (PART_ROWS = 64)
            vec![(1, 300), (0, 255), (1, 64), (0, 1100)],
            (50..57).map(|p| (1, p)).collect(),
            // a sequence's first rows, fewer than a block visible
            (0..8).map(|p| (0, p)).collect(),
            (0..16).map(|p| (0, p)).collect(),
            (101..141).map(|p| (1, p)).collect(),
            (0..40).map(|r| (r / 8 % 2, 60 + r)).collect(),
        ];
        for rows in passes {
            let n = rows.len();
            let mut s = 13 + n as u64;
            let q: Vec<f32> = (0..n * qw).map(|_| next(&mut s)).collect();
            let (pos, base): (Vec<i32>, Vec<i32>) = rows.iter().map(|&(slot, p)| (p, slot * context as i32)).unzip();
            let want = reference(spec, &q, &k, &v, &pos, &base, false);
            let want_bf16 = reference(spec, &q, &k, &v, &pos, &base, true);
            let mut outs: Vec<Vec<f32>> = vec![];
            for on_tiles in [false, true] {
                let mut out = vec![f32::NAN; n * qw];
                let args = [q.as_ptr(), kb.as_ptr() as *const f32, vb.as_ptr() as *const f32, pos.as_ptr() as *const f32, base.as_ptr() as *const f32, out.as_mut_ptr(), workspace.as_mut_ptr() as *mut f32].map(|p| p as *mut u8);
                // scratch only where the runtime gives it: AMX kernels get it where AMX is granted
                let scratch = if on_tiles && (amx || !on_amx) { scratch.as_mut_ptr() as *mut u8 } else { std::ptr::null_mut() };
                let (total, grain) = Work::HeadRows(spec.kv_heads).range(n, !scratch.is_null());
                let units = total / grain;
                // three pieces, as the executor cuts them
                for piece in 0..3 {
                    let (begin, end) = (units * piece / 3 * grain, (units * (piece + 1) / 3 * grain).min(total));
                    // SAFETY: the kernel reads q [n, qw], the caches at the rows' bases and positions, writes
                    // out [n, qw] and its workspace.
                    unsafe { loaded.get(&name)(args.as_ptr(), n as i64, begin as i64, end as i64, scratch) };
                }
                // rows in whole tiles of one sequence take the tile path (where built and granted)
                let tiled = |t: usize| on_tiles && tiles && n >= 16 && t / 16 * 16 + 16 <= n && rows[t / 16 * 16..t / 16 * 16 + 16].iter().all(|r| r.0 == rows[t / 16 * 16].0);
                assert!(workspace.iter().skip(workspace.len() - spec.kv_heads * 16 / 2).all(|&c| c == 0), "the workspace's counters are left at zero");
                for t in 0..n {
                    let (got, row) = (&out[t * qw..(t + 1) * qw], t * qw..(t + 1) * qw);
                    // AMX's tiles round q, k, v and the weights to bf16; the vector path sums f32 in another order
                    let (want, bound) = if tiled(t) && on_amx { (&want_bf16[row], 4e-3) } else { (&want[row], 1e-4) };
                    let err = kiln_tests::max_abs_err(got, want);
                    assert!(err <= bound, "{spec:?} on {target}, {n} rows, row {t} (tiles: {}): {err} off its definition", tiled(t));
                }
                for t0 in (0..n).step_by(16).filter(|&t0| tiled(t0)) {
                    let tile = t0 * qw..(t0 + 16) * qw;
                    assert!(out[tile.clone()] != outs[0][tile], "{spec:?} on {target}, {n} rows, rows {t0}..: the tile path is in use");
                }
                outs.push(out);
            }
        }
    }
}
