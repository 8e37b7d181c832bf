//! Rotary embedding kernels (rotate-half form), reading a cos|sin table by position: the first
//! `rd` values of each head turn, the rest (partial rotary) are copied.
use super::attention::lanes_dividing;
use super::codegen::Cg;

pub fn emit(cg: &mut Cg, name: &str, width: usize, hd: usize, rd: usize) {
    let ka = cg.kernel(name);
    let [x, pos, table, out] = [0, 1, 2, 3].map(|i| cg.arg(&ka, i));
    let half = (rd / 2) as u64;
    let l = lanes_dividing(cg, rd / 2);
    let lc = lanes_dividing(cg, hd - rd);
    let (w, hd, rd) = (width as u64, hd as u64, rd as u64);
    cg.for_each(ka.begin, ka.end, 1, &mut |cg, t| {
        let tab = cg.mul(cg.load_i32(pos, t), cg.int(rd));
        cg.for_each(cg.int(0), cg.int(w), hd, &mut |cg, h0| {
            let base = cg.add(cg.mul(t, cg.int(w)), h0);
            cg.for_each(cg.int(0), cg.int(half), l as u64, &mut |cg, i| {
                let (lo, hi) = (cg.add(base, i), cg.add(cg.add(base, i), cg.int(half)));
                let (x1, x2) = (cg.load(x, lo, l), cg.load(x, hi, l));
                let c = cg.load(table, cg.add(tab, i), l);
                let s = cg.load(table, cg.add(cg.add(tab, i), cg.int(half)), l);
                cg.store(out, lo, cg.fsub(cg.fmul(x1, c), cg.fmul(x2, s)));
                cg.store(out, hi, cg.fadd(cg.fmul(x2, c), cg.fmul(x1, s)));
            });
            cg.for_each(cg.add(base, cg.int(rd)), cg.add(base, cg.int(hd)), lc as u64, &mut |cg, j| cg.store(out, j, cg.load(x, j, lc)));
        });
    });
    cg.ret();
}
