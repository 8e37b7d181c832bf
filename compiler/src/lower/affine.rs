//! MLX's affine groups dequantised in registers (layout in mlx/affine.rs): part t of a group
//! is elements 32t .. 32t + 32 of its bit stream. Each vector of `lanes` values loads the bytes
//! its bits span, gathers every lane's low and high byte with constant shuffles, and shifts
//! and masks by constant amounts: one mechanism for every bit width.
use inkwell::types::VectorType;
use inkwell::values::{PointerValue, VectorValue};

use super::codegen::{ok, Cg};
use super::weight_format::{bf16_splat, f16_splat};
use crate::mlx::affine::{Affine, ScaleType};

/// The scale (or bias) of type `t` at `block + offset`, as f32 in every lane.
pub fn splat_scale<'ctx>(cg: &Cg<'ctx>, t: ScaleType, block: PointerValue<'ctx>, offset: u64, lanes: u32) -> VectorValue<'ctx> {
    match t {
        ScaleType::F32 => cg.splat(cg.load_f32(cg.byte_ptr(block, cg.int(offset)), cg.int(0)), lanes),
        ScaleType::F16 => f16_splat(cg, block, offset, lanes),
        ScaleType::BF16 => bf16_splat(cg, block, offset, lanes),
    }
}

/// The f32 values of part `t` of the group at `block`, as 32 / lanes vectors.
pub fn part<'ctx>(cg: &Cg<'ctx>, a: Affine, block: PointerValue<'ctx>, t: u64, lanes: u32) -> Vec<VectorValue<'ctx>> {
    let scalar = |offset: u64| splat_scale(cg, a.scale, block, offset, lanes);
    let s = a.scale.bytes() as u64;
    let (scale, bias) = (scalar(0), scalar(s));
    let bits = a.bits as u64;
    let i32s = cg.i32.vec_type(lanes);
    // a constant i32 vector: lane j holds v(j)
    let consts = |v: &dyn Fn(u64) -> u64| VectorType::const_vector(&(0..lanes as u64).map(|j| cg.i32.const_int(v(j), false)).collect::<Vec<_>>());
    (0..32 / lanes as u64)
        .map(|v| {
            let first = 32 * t + v * lanes as u64; // element of the group this vector starts at
            let (start, end) = (first * bits / 8, ((first + lanes as u64) * bits).div_ceil(8));
            let n = (end - start) as u32;
            let bytes = cg.load_ints(cg.byte_ptr(block, cg.int(2 * s + start)), cg.ctx.i8_type().vec_type(n));
            // lane j's bits start at bit `at` of the loaded bytes; they span at most two bytes
            let at = |j: u64| (first + j) * bits - 8 * start;
            let pick = |index: &dyn Fn(u64) -> u64| {
                let picked = ok!(cg.b.build_shuffle_vector(bytes, bytes.get_type().get_undef(), consts(index), ""));
                ok!(cg.b.build_int_z_extend(picked, i32s, ""))
            };
            let lo = pick(&|j| at(j) / 8);
            let hi = pick(&|j| (at(j) / 8 + 1).min(n as u64 - 1)); // the last byte again where unused
            let word = ok!(cg.b.build_or(lo, ok!(cg.b.build_left_shift(hi, consts(&|_| 8), "")), ""));
            let q = ok!(cg.b.build_right_shift(word, consts(&|j| at(j) % 8), false, ""));
            let q = ok!(cg.b.build_and(q, consts(&|_| (1 << bits) - 1), ""));
            cg.fma(ok!(cg.b.build_signed_int_to_float(q, cg.vt(lanes), "")), scale, bias)
        })
        .collect()
}
