//! Row copies: gather (embedding lookup in any weight format, logit-row selection) and the
//! KV-cache write and read (f32; f16 converted on the way; Q8_0 blocks of 32 quantised on the way:
//! d = max|x| / 127 stored as f16, q = round-half-even(x / d)).
use inkwell::values::{IntValue, PointerValue, VectorValue};
use runtime::plan::KvDtype;

use super::codegen::{ok, Cg};
use super::weight_format::{f16_splat, f16_to_f32, f32_to_f16, WeightFormat};

/// out[t] = f32(table[idx[t]])      args: table, idx, out
pub fn gather<'ctx>(cg: &mut Cg<'ctx>, name: &str, width: usize, format: WeightFormat) {
    let ka = cg.kernel(name);
    let [table, idx, out] = [0, 1, 2].map(|i| cg.arg(&ka, i));
    let w = width as u64;
    cg.for_each(ka.begin, ka.end, 1, &mut |cg, t| {
        let row = cg.byte_ptr(table, cg.mul(cg.load_i32(idx, t), cg.int(format.row_bytes(width))));
        let to = cg.mul(t, cg.int(w));
        let copy = |cg: &Cg<'ctx>, lanes: u32, start: IntValue<'ctx>| {
            cg.for_each(start, cg.int(w), format.step(lanes), &mut |cg, k0| {
                for (s, v) in format.load_step(cg, row, k0, lanes).into_iter().enumerate() {
                    cg.store(out, cg.add(to, cg.add(k0, cg.int(s as u64 * lanes as u64))), v);
                }
            })
        };
        let rest = copy(cg, cg.lanes, cg.int(0));
        if !format.is_blocked() {
            copy(cg, 1, rest);
        }
    });
    cg.ret();
}

/// cache[base[t] + pos[t]] = x[t], in the cache's dtype      args: cache, x, pos, base
pub fn kv_write(cg: &mut Cg, name: &str, width: usize, dtype: KvDtype) {
    let ka = cg.kernel(name);
    let [cache, x, pos, base] = [0, 1, 2, 3].map(|i| cg.arg(&ka, i));
    let w = width as u64;
    cg.for_each(ka.begin, ka.end, 1, &mut |cg, t| {
        let (from, to) = (cg.mul(t, cg.int(w)), cg.mul(cg.add(cg.load_i32(base, t), cg.load_i32(pos, t)), cg.int(w)));
        if dtype == KvDtype::Q8_0 {
            return q8_0_row(cg, cg.byte_ptr(x, cg.mul(from, cg.int(4))), cg.byte_ptr(cache, cg.mul(ok!(cg.b.build_right_shift(to, cg.int(5), false, "")), cg.int(34))), w);
        }
        cg.for_lanes(cg.int(0), cg.int(w), &mut |cg, j, lanes| {
            let v = cg.load(x, cg.add(from, j), lanes);
            match dtype {
                KvDtype::F32 => cg.store(cache, cg.add(to, j), v),
                KvDtype::F16 => cg.store_ints(cg.byte_ptr(cache, cg.mul(cg.add(to, j), cg.int(2))), f32_to_f16(cg, v)),
                KvDtype::Q8_0 => unreachable!("written by blocks above"),
            }
        });
    });
    cg.ret();
}

/// Where element `idx` of a cache in `dtype` is (Q8_0: its block).
pub fn kv_at<'ctx>(cg: &Cg<'ctx>, cache: PointerValue<'ctx>, idx: IntValue<'ctx>, dtype: KvDtype) -> PointerValue<'ctx> {
    match dtype {
        KvDtype::F32 => cg.byte_ptr(cache, cg.mul(idx, cg.int(4))),
        KvDtype::F16 => cg.byte_ptr(cache, cg.mul(idx, cg.int(2))),
        KvDtype::Q8_0 => cg.byte_ptr(cache, cg.mul(ok!(cg.b.build_right_shift(idx, cg.int(5), false, "")), cg.int(34))),
    }
}

/// `lanes` cache values from element `idx` of a cache in `dtype`, as f32.
pub fn load_kv<'ctx>(cg: &Cg<'ctx>, cache: PointerValue<'ctx>, idx: IntValue<'ctx>, lanes: u32, dtype: KvDtype) -> VectorValue<'ctx> {
    match dtype {
        KvDtype::F32 => cg.load(cache, idx, lanes),
        KvDtype::F16 => f16_to_f32(cg, cg.load_ints(kv_at(cg, cache, idx, dtype), cg.ctx.i16_type().vec_type(lanes))),
        KvDtype::Q8_0 => {
            // lanes within one block: d at its start, the quants after
            let block = kv_at(cg, cache, idx, dtype);
            let q = cg.load_ints(cg.byte_ptr(block, cg.add(cg.int(2), ok!(cg.b.build_and(idx, cg.int(31), "")))), cg.ctx.i8_type().vec_type(lanes));
            cg.fmul(ok!(cg.b.build_signed_int_to_float(q, cg.vt(lanes), "")), f16_splat(cg, block, 0, lanes))
        }
    }
}

/// One row [w] of f32 at x into Q8_0 blocks at `out`.
fn q8_0_row<'ctx>(cg: &Cg<'ctx>, x: PointerValue<'ctx>, out: PointerValue<'ctx>, w: u64) {
    cg.for_each(cg.int(0), cg.int(w), 32, &mut |cg, e| {
        let (d, qs) = super::dot::q8_block(cg, [cg.load(x, e, 16), cg.load(x, cg.add(e, cg.int(16)), 16)]);
        let block = cg.byte_ptr(out, cg.mul(ok!(cg.b.build_right_shift(e, cg.int(5), false, "")), cg.int(34)));
        cg.store_ints(block, f32_to_f16(cg, cg.splat(d, 1)));
        for (h, q) in qs.into_iter().enumerate() {
            cg.store_ints(cg.byte_ptr(block, cg.int(2 + 16 * h as u64)), ok!(cg.b.build_int_truncate(q, cg.ctx.i8_type().vec_type(16), "")));
        }
    });
}
