//! Row copies: gather (embedding lookup, logit-row selection) and the KV-cache write.
use super::codegen::Cg;

/// out[t] = table[idx[t]]            args: table, idx, out
/// cache[pos[t]] = x[t]              args: cache, x, pos
pub fn emit(cg: &mut Cg, name: &str, width: usize, scatter: bool) {
    let ka = cg.kernel(name);
    let [a0, a1, a2] = [0, 1, 2].map(|i| cg.arg(&ka, i));
    let (src, dst, index) = if scatter { (a1, a0, a2) } else { (a0, a2, a1) };
    let w = width as u64;
    cg.for_each(ka.begin, ka.end, 1, &mut |cg, t| {
        let i = cg.mul(cg.load_i32(index, t), cg.int(w));
        let (from, to) = if scatter { (cg.mul(t, cg.int(w)), i) } else { (i, cg.mul(t, cg.int(w))) };
        cg.for_lanes(cg.int(0), cg.int(w), &mut |cg, j, lanes| {
            cg.store(dst, cg.add(to, j), cg.load(src, cg.add(from, j), lanes));
        });
    });
    cg.ret();
}
