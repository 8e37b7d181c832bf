//! Per-head RMSNorm (Qwen3's q/k norms): each head's values of a row normalised on their own,
//! times a gain shared by the heads. Row t's head h is row t·heads + h of a [rows·heads, head_dim]
//! view of the same buffer.
use super::attention::lanes_dividing;
use super::codegen::Cg;
use super::expr::inv_rms;

pub fn head_rms_norm(cg: &mut Cg, name: &str, width: usize, hd: usize, eps: f32) {
    let ka = cg.kernel(name);
    let [x, gain, out] = [0, 1, 2].map(|i| cg.arg(&ka, i));
    let heads = (width / hd) as u64;
    let l = lanes_dividing(cg, hd);
    let hd = hd as u64;
    let (begin, end) = (cg.mul(ka.begin, cg.int(heads)), cg.mul(ka.end, cg.int(heads)));
    cg.for_each(begin, end, 1, &mut |cg, r| {
        let inv = cg.splat(inv_rms(cg, x, r, hd, eps), l);
        let row = cg.mul(r, cg.int(hd));
        cg.for_each(cg.int(0), cg.int(hd), l as u64, &mut |cg, j| {
            let at = cg.add(row, j);
            cg.store(out, at, cg.fmul(cg.fmul(cg.load(x, at, l), inv), cg.load(gain, j, l)));
        });
    });
    cg.ret();
}
