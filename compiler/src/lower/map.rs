//! Map kernels: out[t, j] = expr over rows [begin, end), optionally on a normalised row.
use super::codegen::{Cg, KernelArgs};
use super::expr::{eval, inv_rms, At};
use super::kernel::KExpr;

pub fn emit(cg: &mut Cg, name: &str, width: usize, inputs: usize, expr: &KExpr) {
    let k: KernelArgs = cg.kernel(name);
    let ptrs: Vec<_> = (0..inputs).map(|i| cg.arg(&k, i)).collect();
    let out = cg.arg(&k, inputs);
    let w = width as u64;
    cg.for_each(k.begin, k.end, 1, &mut |cg, t| {
        let inv = expr.normed().map(|(i, eps)| inv_rms(cg, ptrs[i], t, w, eps));
        cg.for_lanes(cg.int(0), cg.int(w), &mut |cg, j, lanes| {
            let v = eval(cg, expr, &ptrs, &At { t, j, width: w, lanes, acc: None, inv_rms: inv });
            cg.store(out, cg.add(cg.mul(t, cg.int(w)), j), v);
        });
    });
    cg.ret();
}
