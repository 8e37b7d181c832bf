//! Attention kernels: causal grouped-query attention over the KV cache, one head per work item.
//! Query t sees its sequence's cache rows 0..=pos[t] (from base[t]), or with a window only pos[t] - window < row <= pos[t] (the
//! loop starts at the block holding the first of them). Online softmax over blocks of `lanes` cache rows:
//! scores of a block form one vector, so exp runs vectorised and no score buffer is needed.
//! Scores are soft-capped (cap · tanh(s / cap)) before masking where the model asks.
use inkwell::values::{BasicValueEnum, FloatValue, VectorValue};

use super::codegen::{ok, Cg};
use super::copy::load_kv;
use super::kernel::AttentionSpec;

/// The widest power-of-two vector (≤ the target's) that divides `n`.
pub fn lanes_dividing(cg: &Cg, n: usize) -> u32 {
    let mut l = cg.lanes;
    while l > 1 && n % l as usize != 0 {
        l /= 2;
    }
    l
}

pub fn emit(cg: &mut Cg, name: &str, spec: &AttentionSpec) {
    let AttentionSpec { heads, kv_heads, head_dim: hd, scale, window, softcap, kv } = spec.clone();
    let ka = cg.kernel(name);
    let [q, kc, vc, pos, base, out] = [0, 1, 2, 3, 4, 5].map(|i| cg.arg(&ka, i));
    let lv = lanes_dividing(cg, hd);
    let nv = hd as u64 / lv as u64;
    let (qw, kvw, group, hd) = ((heads * hd) as u64, (kv_heads * hd) as u64, (heads / kv_heads) as u64, hd as u64);
    let sb = cg.lanes as u64; // cache rows per block
    const NEG: f64 = -1e30;

    cg.for_each(ka.begin, ka.end, 1, &mut |cg, h| {
        let g = ok!(cg.b.build_int_unsigned_div(h, cg.int(group), ""));
        let kv_off = cg.mul(g, cg.int(hd));
        cg.for_each(cg.int(0), ka.rows, 1, &mut |cg, t| {
            let p = cg.load_i32(pos, t);
            let b = cg.load_i32(base, t);
            let q_off = cg.add(cg.mul(t, cg.int(qw)), cg.mul(h, cg.int(hd)));
            let qv: Vec<VectorValue> =
                (0..nv).map(|v| cg.fmul(cg.load(q, cg.add(q_off, cg.int(v * lv as u64)), lv), cg.splat_const(scale as f64, lv))).collect();
            let seen = cg.add(p, cg.int(1));
            let blocks_end = cg.mul(ok!(cg.b.build_int_unsigned_div(cg.add(seen, cg.int(sb - 1)), cg.int(sb), "")), cg.int(sb));
            // the first visible row (0 without a window), and the block it is in
            let first = match window {
                Some(w) => {
                    let past = cg.lt(cg.int(w as u64), seen);
                    ok!(cg.b.build_select(past, ok!(cg.b.build_int_sub(seen, cg.int(w as u64), "")), cg.int(0), "")).into_int_value()
                }
                None => cg.int(0),
            };
            let blocks_start = cg.mul(ok!(cg.b.build_int_unsigned_div(first, cg.int(sb), "")), cg.int(sb));
            let mut init: Vec<BasicValueEnum> = vec![cg.f32.const_float(NEG).into(), cg.f32.const_zero().into()];
            init.extend((0..nv).map(|_| BasicValueEnum::from(cg.vt(lv).const_zero())));
            let (_, fin) = cg.for_carry(blocks_start, blocks_end, sb, init, &mut |cg, s0, c| {
                let (m, l) = (c[0].into_float_value(), c[1].into_float_value());
                let row = |i: u64| {
                    let s = cg.add(s0, cg.int(i));
                    let visible = ok!(cg.b.build_and(cg.lt(s, seen), ok!(cg.b.build_not(cg.lt(s, first), "")), ""));
                    (visible, cg.add(cg.mul(cg.add(b, cg.min(s, p)), cg.int(kvw)), kv_off))
                };
                let mut scores = cg.vt(sb as u32).get_undef();
                for i in 0..sb {
                    let (valid, base) = row(i);
                    let mut acc = cg.vt(lv).const_zero();
                    for (v, qv) in qv.iter().enumerate() {
                        acc = cg.fma(*qv, load_kv(cg, kc, cg.add(base, cg.int(v as u64 * lv as u64)), lv, kv), acc);
                    }
                    let mut score = cg.hsum(acc);
                    if let Some(cap) = softcap {
                        score = cg.extract(cg.softcap(cg.splat(score, 1), cap), 0);
                    }
                    let score = cg.select(valid, score, cg.f32.const_float(NEG));
                    scores = cg.insert(scores, score, cg.int(i));
                }
                let bmax = cg.hmax(scores);
                let m_new: FloatValue = cg.select(cg.fgt(bmax, m), bmax, m);
                let corr = cg.extract(cg.exp(cg.fsub(cg.splat(m, 1), cg.splat(m_new, 1))), 0);
                let w = cg.exp(cg.fsub(scores, cg.splat(m_new, sb as u32)));
                let l_new = ok!(cg.b.build_float_add(ok!(cg.b.build_float_mul(l, corr, "")), cg.hsum(w), ""));
                let mut o: Vec<VectorValue> = c[2..].iter().map(|v| cg.fmul(v.into_vector_value(), cg.splat(corr, lv))).collect();
                for i in 0..sb {
                    let (_, base) = row(i);
                    let wi = cg.splat(cg.extract(w, i), lv);
                    for (v, ov) in o.iter_mut().enumerate() {
                        *ov = cg.fma(wi, load_kv(cg, vc, cg.add(base, cg.int(v as u64 * lv as u64)), lv, kv), *ov);
                    }
                }
                let mut next: Vec<BasicValueEnum> = vec![m_new.into(), l_new.into()];
                next.extend(o.into_iter().map(BasicValueEnum::from));
                next
            });
            let inv_l = cg.fdiv(cg.splat_const(1.0, lv), cg.splat(fin[1].into_float_value(), lv));
            for v in 0..nv {
                cg.store(out, cg.add(q_off, cg.int(v * lv as u64)), cg.fmul(fin[2 + v as usize].into_vector_value(), inv_l));
            }
        });
    });
    cg.ret();
}
