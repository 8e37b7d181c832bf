//! Row copies: gather (embedding lookup in any weight format, logit-row selection) and the
//! KV-cache write and read (f32, or f16 converted on the way).
use inkwell::values::{IntValue, PointerValue, VectorValue};
use runtime::plan::KvDtype;

use super::codegen::Cg;
use super::weight_format::{f16_to_f32, f32_to_f16, WeightFormat};

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

/// cache[base[t] + pos[t]] = x[t], as f16 for an f16 cache      args: cache, x, pos, base
pub fn kv_write(cg: &mut Cg, name: &str, width: usize, dtype: KvDtype) {
    let ka = cg.kernel(name);
    let [cache, x, pos, base] = [0, 1, 2, 3].map(|i| cg.arg(&ka, i));
    let w = width as u64;
    cg.for_each(ka.begin, ka.end, 1, &mut |cg, t| {
        let (from, to) = (cg.mul(t, cg.int(w)), cg.mul(cg.add(cg.load_i32(base, t), cg.load_i32(pos, t)), cg.int(w)));
        cg.for_lanes(cg.int(0), cg.int(w), &mut |cg, j, lanes| {
            let v = cg.load(x, cg.add(from, j), lanes);
            match dtype {
                KvDtype::F32 => cg.store(cache, cg.add(to, j), v),
                KvDtype::F16 => cg.store_ints(cg.byte_ptr(cache, cg.mul(cg.add(to, j), cg.int(2))), f32_to_f16(cg, v)),
            }
        });
    });
    cg.ret();
}

/// `lanes` cache values from element `idx` of a cache in `dtype`, as f32.
pub fn load_kv<'ctx>(cg: &Cg<'ctx>, cache: PointerValue<'ctx>, idx: IntValue<'ctx>, lanes: u32, dtype: KvDtype) -> VectorValue<'ctx> {
    match dtype {
        KvDtype::F32 => cg.load(cache, idx, lanes),
        KvDtype::F16 => f16_to_f32(cg, cg.load_ints(cg.byte_ptr(cache, cg.mul(idx, cg.int(2))), cg.ctx.i16_type().vec_type(lanes))),
    }
}
