//! Matmul kernels: out[t, n] = epilogue(Σ_k input(t, k) · W[n, k]) for columns [begin, end).
//!
//! Register-blocked: a tile of TB rows × NB columns (`nb`) keeps TB·NB vector accumulators. Each row
//! tile first evaluates the fused prologue (norm · gain, …) once into a stack buffer xs[TB][K];
//! the NB weight rows then stream past it, dequantised in registers a step at a time
//! (weight_format.rs). Decode (1 row) takes the TB = 1 path: a pure weight stream, bound by
//! memory bandwidth. With `int8` (Q8_0/Q4_0/Q4_1 on AVX512-VNNI, see vnni.rs) each row of the
//! tile is also quantised to 8 bits once, and the weights meet it in integer dot products.
use inkwell::values::{BasicValueEnum, IntValue, PointerValue};

use super::codegen::{ok, Cg};
use super::expr::{eval, inv_rms, At};
use super::kernel::KExpr;
use super::vnni;
use super::weight_format::WeightFormat;

/// Columns per block: decode (one row) streams more weight rows at once to keep more loads and
/// dequantisations in flight; multi-row tiles need the registers for TB·NB accumulators (and
/// integer steps hold three vectors per weight row).
const fn nb(tb: u64, int8: bool) -> u64 {
    match (tb, int8) {
        (1, false) => 8,
        (1, true) | (_, false) => 4,
        (_, true) => 2,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn emit<'ctx>(cg: &mut Cg<'ctx>, name: &str, k: usize, n: usize, inputs: usize, input: &KExpr, epilogue: &KExpr, format: WeightFormat, int8: bool) {
    let ka = cg.kernel(name);
    let ptrs: Vec<PointerValue<'ctx>> = (0..=inputs).map(|i| cg.arg(&ka, i)).collect();
    let (w, out) = (ptrs[0], cg.arg(&ka, inputs + 1));
    let row_bytes = format.row_bytes(k);
    let (k, n) = (k as u64, n as u64);
    let tb_max: u64 = if cg.lanes >= 16 { 4 } else { 2 };
    let xs = ok!(cg.b.build_array_alloca(cg.f32, cg.int(tb_max * k), "xs")); // [TB, K]
    // int8: each row quantised — bytes [TB, K], per-lane scales and sums [TB, K / 4]
    let quantised: Vec<vnni::Quantised> = if int8 {
        let (q, dxe, sxe) = (ok!(cg.b.build_array_alloca(cg.ctx.i8_type(), cg.int(tb_max * k), "xq")), ok!(cg.b.build_array_alloca(cg.f32, cg.int(tb_max * k / 4), "dxe")), ok!(cg.b.build_array_alloca(cg.f32, cg.int(tb_max * k / 4), "sxe")));
        (0..tb_max).map(|r| vnni::Quantised { q: cg.byte_ptr(q, cg.int(r * k)), dxe: cg.byte_ptr(dxe, cg.int(r * k)), sxe: cg.byte_ptr(sxe, cg.int(r * k)) }).collect()
    } else {
        vec![]
    };

    let tile = |cg: &Cg<'ctx>, t0: IntValue<'ctx>, tb: u64| {
        // the fused prologue, once per row of the tile
        for r in 0..tb {
            let t = cg.add(t0, cg.int(r));
            let inv = input.normed().map(|(i, eps)| inv_rms(cg, ptrs[i], t, k, eps));
            cg.for_lanes(cg.int(0), cg.int(k), &mut |cg, j, lanes| {
                let v = eval(cg, input, &ptrs, &At { t, j, width: k, lanes, acc: None, inv_rms: inv });
                cg.store(xs, cg.add(cg.int(r * k), j), v);
            });
            if int8 {
                vnni::quantise_row(cg, format, cg.byte_ptr(xs, cg.int(4 * r * k)), k, &quantised[r as usize]);
            }
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
            let wide = if int8 {
                let init: Vec<BasicValueEnum> = (0..tb * nb).map(|_| cg.vt(16).const_zero().into()).collect();
                cg.for_carry(cg.int(0), cg.int(k), vnni::STEP, init, &mut |cg, kk, acc| {
                    let ws: Vec<_> = rows.iter().map(|&row| vnni::load_weights(cg, format, row, kk)).collect();
                    acc.iter().enumerate().map(|(i, a)| vnni::accumulate(cg, a.into_vector_value(), &ws[i % nb as usize], &quantised[i / nb as usize], kk).into()).collect()
                })
                .1
            } else {
                dot(cg.lanes, cg.int(0)).1
            };
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
        let rest = cg.for_each(ka.begin, ka.end, nb(tb, int8), &mut |cg, n0| block(cg, n0, nb(tb, int8)));
        cg.for_each(rest, ka.end, 1, &mut |cg, n0| block(cg, n0, 1));
    };
    let rest = cg.for_each(cg.int(0), ka.rows, tb_max, &mut |cg, t0| tile(cg, t0, tb_max));
    cg.for_each(rest, ka.rows, 1, &mut |cg, t0| tile(cg, t0, 1));
    cg.ret();
}
