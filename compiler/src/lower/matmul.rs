//! Matmul kernels: out[t, n] = epilogue(Σ_k input(t, k) · W[n, k]) for columns [begin, end).
//!
//! Register-blocked: a tile of TB rows × NB columns keeps TB·NB vector accumulators. Each row
//! tile first evaluates the fused prologue (norm · gain, …) once into a stack buffer xs[TB][K];
//! the NB weight rows then stream past it. Decode (1 row) takes the TB = 1 path: a pure
//! weight stream, bound by memory bandwidth.
use inkwell::values::{BasicValueEnum, IntValue, PointerValue};

use super::codegen::{ok, Cg};
use super::expr::{eval, inv_rms, At};
use super::kernel::KExpr;

const NB: u64 = 4;

pub fn emit<'ctx>(cg: &mut Cg<'ctx>, name: &str, k: usize, n: usize, inputs: usize, input: &KExpr, epilogue: &KExpr) {
    let ka = cg.kernel(name);
    let ptrs: Vec<PointerValue<'ctx>> = (0..=inputs).map(|i| cg.arg(&ka, i)).collect();
    let (w, out) = (ptrs[0], cg.arg(&ka, inputs + 1));
    let (k, n) = (k as u64, n as u64);
    let tb_max: u64 = if cg.lanes >= 16 { 4 } else { 2 };
    let xs = ok!(cg.b.build_array_alloca(cg.f32, cg.int(tb_max * k), "xs")); // [TB, K]

    let tile = |cg: &Cg<'ctx>, t0: IntValue<'ctx>, tb: u64| {
        // the fused prologue, once per row of the tile
        for r in 0..tb {
            let t = cg.add(t0, cg.int(r));
            let inv = input.normed().map(|(i, eps)| inv_rms(cg, ptrs[i], t, k, eps));
            cg.for_lanes(cg.int(0), cg.int(k), &mut |cg, j, lanes| {
                let v = eval(cg, input, &ptrs, &At { t, j, width: k, lanes, acc: None, inv_rms: inv });
                cg.store(xs, cg.add(cg.int(r * k), j), v);
            });
        }
        let block = |cg: &Cg<'ctx>, n0: IntValue<'ctx>, nb: u64| {
            let dot = |lanes: u32, start: IntValue<'ctx>| {
                let init: Vec<BasicValueEnum> = (0..tb * nb).map(|_| cg.vt(lanes).const_zero().into()).collect();
                cg.for_carry(start, cg.int(k), lanes as u64, init, &mut |cg, kk, acc| {
                    let xv: Vec<_> = (0..tb).map(|r| cg.load(xs, cg.add(cg.int(r * k), kk), lanes)).collect();
                    let wv: Vec<_> = (0..nb).map(|c| cg.load(w, cg.add(cg.mul(cg.add(n0, cg.int(c)), cg.int(k)), kk), lanes)).collect();
                    acc.iter()
                        .enumerate()
                        .map(|(i, a)| cg.fma(xv[i / nb as usize], wv[i % nb as usize], a.into_vector_value()).into())
                        .collect()
                })
            };
            let (rest, wide) = dot(cg.lanes, cg.int(0));
            let (_, narrow) = dot(1, rest);
            for r in 0..tb {
                for c in 0..nb {
                    let i = (r * nb + c) as usize;
                    let s = ok!(cg.b.build_float_add(cg.hsum(wide[i].into_vector_value()), cg.hsum(narrow[i].into_vector_value()), ""));
                    let (t, j) = (cg.add(t0, cg.int(r)), cg.add(n0, cg.int(c)));
                    let y = eval(cg, epilogue, &ptrs, &At { t, j, width: n, lanes: 1, acc: Some(cg.splat(s, 1)), inv_rms: None });
                    cg.store(out, cg.add(cg.mul(t, cg.int(n)), j), y);
                }
            }
        };
        let rest = cg.for_each(ka.begin, ka.end, NB, &mut |cg, n0| block(cg, n0, NB));
        cg.for_each(rest, ka.end, 1, &mut |cg, n0| block(cg, n0, 1));
    };
    let rest = cg.for_each(cg.int(0), ka.rows, tb_max, &mut |cg, t0| tile(cg, t0, tb_max));
    cg.for_each(rest, ka.rows, 1, &mut |cg, t0| tile(cg, t0, 1));
    cg.ret();
}
