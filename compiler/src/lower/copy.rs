//! Row copies: gather (embedding lookup in any weight format, logit-row selection) and the
//! KV-cache write.
use inkwell::values::IntValue;

use super::codegen::Cg;
use super::weight_format::WeightFormat;

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

/// cache[pos[t]] = x[t]              args: cache, x, pos
pub fn kv_write(cg: &mut Cg, name: &str, width: usize) {
    let ka = cg.kernel(name);
    let [cache, x, pos] = [0, 1, 2].map(|i| cg.arg(&ka, i));
    let w = width as u64;
    cg.for_each(ka.begin, ka.end, 1, &mut |cg, t| {
        let (from, to) = (cg.mul(t, cg.int(w)), cg.mul(cg.load_i32(pos, t), cg.int(w)));
        cg.for_lanes(cg.int(0), cg.int(w), &mut |cg, j, lanes| {
            cg.store(cache, cg.add(to, j), cg.load(x, cg.add(from, j), lanes));
        });
    });
    cg.ret();
}
