//! Evaluating a fused elementwise expression at [t, j..j+lanes], and the row norm it may need.
use inkwell::values::{FloatValue, IntValue, PointerValue, VectorValue};

use super::codegen::{ok, Cg};
use super::kernel::KExpr;
use crate::fuse::Unary;

/// Where an expression is evaluated.
pub struct At<'ctx> {
    pub t: IntValue<'ctx>,
    pub j: IntValue<'ctx>,
    /// Row stride of `Row`/`Normed` leaves (elements).
    pub width: u64,
    pub lanes: u32,
    pub acc: Option<VectorValue<'ctx>>,
    pub inv_rms: Option<FloatValue<'ctx>>,
}

pub fn eval<'ctx>(cg: &Cg<'ctx>, e: &KExpr, ptrs: &[PointerValue<'ctx>], at: &At<'ctx>) -> VectorValue<'ctx> {
    let row_idx = || cg.add(cg.mul(at.t, cg.int(at.width)), at.j);
    match e {
        KExpr::Row(i) => cg.load(ptrs[*i], row_idx(), at.lanes),
        KExpr::Vector(i) => cg.load(ptrs[*i], at.j, at.lanes),
        KExpr::Normed(i, _) => cg.fmul(cg.load(ptrs[*i], row_idx(), at.lanes), cg.splat(at.inv_rms.expect("norm computed"), at.lanes)),
        KExpr::Acc => at.acc.expect("accumulator in a matmul epilogue"),
        KExpr::Add(a, b) => cg.fadd(eval(cg, a, ptrs, at), eval(cg, b, ptrs, at)),
        KExpr::Mul(a, b) => cg.fmul(eval(cg, a, ptrs, at), eval(cg, b, ptrs, at)),
        KExpr::Unary(Unary::Silu, a) => cg.silu(eval(cg, a, ptrs, at)),
        KExpr::Unary(Unary::GeluTanh, a) => cg.gelu_tanh(eval(cg, a, ptrs, at)),
        KExpr::Unary(Unary::Softcap(c), a) => cg.softcap(eval(cg, a, ptrs, at), *c),
        KExpr::Unary(Unary::Scale(c), a) => cg.fmul(eval(cg, a, ptrs, at), cg.splat_const(*c as f64, at.lanes)),
    }
}

/// 1 / sqrt(mean(row²) + eps) for row t of a [_, width] buffer.
pub fn inv_rms<'ctx>(cg: &Cg<'ctx>, base: PointerValue<'ctx>, t: IntValue<'ctx>, width: u64, eps: f32) -> FloatValue<'ctx> {
    let row = cg.mul(t, cg.int(width));
    let sumsq = |lanes: u32, start: IntValue<'ctx>| {
        let init = cg.vt(lanes).const_zero().into();
        cg.for_carry(start, cg.int(width), lanes as u64, vec![init], &mut |cg, j, acc| {
            let x = cg.load(base, cg.add(row, j), lanes);
            vec![cg.fma(x, x, acc[0].into_vector_value()).into()]
        })
    };
    let (rest, wide) = sumsq(cg.lanes, cg.int(0));
    let (_, narrow) = sumsq(1, rest);
    let total = ok!(cg.b.build_float_add(cg.hsum(wide[0].into_vector_value()), cg.hsum(narrow[0].into_vector_value()), ""));
    let mean = ok!(cg.b.build_float_div(total, cg.f32.const_float(width as f64), ""));
    let var = cg.splat(ok!(cg.b.build_float_add(mean, cg.f32.const_float(eps as f64), "")), 1);
    let inv = cg.fdiv(cg.splat_const(1.0, 1), cg.sqrt(var));
    cg.extract(inv, 0)
}
