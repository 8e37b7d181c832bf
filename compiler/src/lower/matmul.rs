//! Matmul kernels: out[t, n] = epilogue(Σ_k input(t, k) · W[n, k]) for columns [begin, end).
//!
//! Register-blocked: a tile of TB rows × NB columns (`nb`) keeps TB·NB vector accumulators. Each row
//! tile first evaluates the fused prologue (norm · gain, …) once into a stack buffer xs[TB][K];
//! the NB weight rows then stream past it, dequantised in registers a step at a time
//! (weight_format.rs). Decode (1 row) takes the TB = 1 path: a pure weight stream, bound by
//! memory bandwidth. With `dot` the matmul is dot.rs's instead: dot-product instructions (int8,
//! bf16) on weights repacked 16 columns at a time.
use inkwell::values::{BasicValueEnum, IntValue, PointerValue};

use super::codegen::{ok, Cg};
use super::expr::{eval, inv_rms, At};
use super::kernel::KExpr;
use super::dot;
use super::weight_format::WeightFormat;

/// Columns per block: decode (one row) streams more weight rows at once to keep more loads and
/// dequantisations in flight; multi-row tiles need the registers for TB·NB accumulators.
const fn nb(tb: u64) -> u64 {
    if tb == 1 { 8 } else { 4 }
}

/// The fused prologue (norm · gain, …) of row `t` into xs [K].
pub fn prologue_row<'ctx>(cg: &Cg<'ctx>, input: &KExpr, ptrs: &[PointerValue<'ctx>], t: IntValue<'ctx>, k: u64, xs: PointerValue<'ctx>) {
    let inv = input.normed().map(|(i, eps)| inv_rms(cg, ptrs[i], t, k, eps));
    cg.for_lanes(cg.int(0), cg.int(k), &mut |cg, j, lanes| {
        let v = eval(cg, input, ptrs, &At { t, j, width: k, lanes, acc: None, inv_rms: inv });
        cg.store(xs, j, v);
    });
}

#[allow(clippy::too_many_arguments)]
pub fn emit<'ctx>(cg: &mut Cg<'ctx>, name: &str, k: usize, n: usize, inputs: usize, input: &KExpr, epilogue: &KExpr, format: WeightFormat, dot: bool) {
    if dot {
        return dot::emit(cg, name, k, n, inputs, input, epilogue, format);
    }
    let ka = cg.kernel(name);
    let ptrs: Vec<PointerValue<'ctx>> = (0..=inputs).map(|i| cg.arg(&ka, i)).collect();
    let (w, out) = (ptrs[0], cg.arg(&ka, inputs + 1));
    let row_bytes = format.row_bytes(k);
    let (k, n) = (k as u64, n as u64);
    let tb_max: u64 = if cg.lanes >= 16 { 4 } else { 2 };
    let xs = ok!(cg.b.build_array_alloca(cg.f32, cg.int(tb_max * k), "xs")); // [TB, K]
    let tile = |cg: &Cg<'ctx>, t0: IntValue<'ctx>, tb: u64| {
        // the fused prologue, once per row of the tile
        for r in 0..tb {
            prologue_row(cg, input, &ptrs, cg.add(t0, cg.int(r)), k, cg.byte_ptr(xs, cg.int(4 * r * k)));
        }
        let block = |cg: &Cg<'ctx>, n0: IntValue<'ctx>, nb: u64| {
            let rows: Vec<PointerValue> = (0..nb).map(|c| cg.byte_ptr(w, cg.mul(cg.add(n0, cg.int(c)), cg.int(row_bytes)))).collect();
            let dot = |lanes: u32, start: IntValue<'ctx>| {
                let init: Vec<BasicValueEnum> = (0..tb * nb).map(|_| cg.vt(lanes).const_zero().into()).collect();
                cg.for_carry(start, cg.int(k), format.step(lanes), init, &mut |cg, kk, mut acc| {
                    // part by part, so only one part of each of the nb rows is live at a time
                    for part in 0..format.parts() {
                        let wv: Vec<_> = rows.iter().map(|&row| format.load_part(cg, row, kk, part, lanes)).collect(); // [nb][part / lanes]
                        let first = part * (format.step(lanes) / format.parts());
                        for s in 0..wv[0].len() as u64 {
                            let at = cg.add(kk, cg.int(first + s * lanes as u64));
                            let xv: Vec<_> = (0..tb).map(|r| cg.load(xs, cg.add(cg.int(r * k), at), lanes)).collect();
                            for (i, a) in acc.iter_mut().enumerate() {
                                *a = cg.fma(xv[i / nb as usize], wv[i % nb as usize][s as usize], a.into_vector_value()).into();
                            }
                        }
                    }
                    acc
                })
            };
            let wide = dot(cg.lanes, cg.int(0)).1;
            let rest = cg.int(k / format.step(cg.lanes) * format.step(cg.lanes));
            // element by element past the last whole vector (blocked formats have none)
            let narrow = (!format.is_blocked()).then(|| dot(1, rest).1);
            for r in 0..tb {
                for c in 0..nb {
                    let i = (r * nb + c) as usize;
                    let mut s = cg.hsum(wide[i].into_vector_value());
                    if let Some(narrow) = &narrow {
                        s = ok!(cg.b.build_float_add(s, cg.hsum(narrow[i].into_vector_value()), ""));
                    }
                    let (t, j) = (cg.add(t0, cg.int(r)), cg.add(n0, cg.int(c)));
                    let y = eval(cg, epilogue, &ptrs, &At { t, j, width: n, lanes: 1, acc: Some(cg.splat(s, 1)), inv_rms: None });
                    cg.store(out, cg.add(cg.mul(t, cg.int(n)), j), y);
                }
            }
        };
        let rest = cg.for_each(ka.begin, ka.end, nb(tb), &mut |cg, n0| block(cg, n0, nb(tb)));
        cg.for_each(rest, ka.end, 1, &mut |cg, n0| block(cg, n0, 1));
    };
    let rest = cg.for_each(cg.int(0), ka.rows, tb_max, &mut |cg, t0| tile(cg, t0, tb_max));
    cg.for_each(rest, ka.rows, 1, &mut |cg, t0| tile(cg, t0, 1));
    cg.ret();
}
