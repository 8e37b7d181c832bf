//! IR-building helpers shared by every kernel: typed loads and stores of f32 vectors,
//! counted loops carrying values, a vector exp, horizontal sums.
use inkwell::builder::Builder;
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module};
use inkwell::types::{FloatType, IntType, PointerType, VectorType};
use inkwell::values::{BasicMetadataValueEnum, BasicValue, BasicValueEnum, FastMathFlags, FloatValue, FunctionValue, IntValue, PointerValue, VectorValue};
use inkwell::{AddressSpace, FloatPredicate, IntPredicate};

/// Builder results only fail when the builder is unpositioned: a bug in this module.
macro_rules! ok {
    ($e:expr) => {
        $e.expect("LLVM builder misuse")
    };
}
pub(crate) use ok;

pub struct Cg<'ctx> {
    pub ctx: &'ctx Context,
    pub module: Module<'ctx>,
    pub b: Builder<'ctx>,
    pub f32: FloatType<'ctx>,
    pub i64: IntType<'ctx>,
    pub i32: IntType<'ctx>,
    pub ptr: PointerType<'ctx>,
    /// Vector lanes of f32 for this target (16 with AVX-512, 8 with AVX2, else 4).
    pub lanes: u32,
    /// Function attributes every kernel carries: target-cpu, target-features, …
    pub attrs: Vec<(String, String)>,
    /// The target's features (LLVM names).
    pub features: Vec<String>,
    func: Option<FunctionValue<'ctx>>,
}

/// The five parameters of every kernel.
pub struct KernelArgs<'ctx> {
    pub args: PointerValue<'ctx>,
    pub rows: IntValue<'ctx>,
    pub begin: IntValue<'ctx>,
    pub end: IntValue<'ctx>,
    /// This thread's scratch (`Plan::scratch_bytes`), or null where AMX may not be used.
    pub scratch: PointerValue<'ctx>,
}

impl<'ctx> Cg<'ctx> {
    pub fn new(ctx: &'ctx Context, lanes: u32, attrs: Vec<(String, String)>, features: Vec<String>) -> Self {
        Cg {
            ctx,
            module: ctx.create_module("kiln"),
            b: ctx.create_builder(),
            f32: ctx.f32_type(),
            i64: ctx.i64_type(),
            i32: ctx.i32_type(),
            ptr: ctx.ptr_type(AddressSpace::default()),
            lanes,
            attrs,
            features,
            func: None,
        }
    }

    /// Starts `void name(void **args, i64 rows, i64 begin, i64 end, void *scratch)`; finish with `ret`.
    pub fn kernel(&mut self, name: &str) -> KernelArgs<'ctx> {
        let ty = self.ctx.void_type().fn_type(&[self.ptr.into(), self.i64.into(), self.i64.into(), self.i64.into(), self.ptr.into()], false);
        let f = self.module.add_function(name, ty, Some(Linkage::External));
        for (k, v) in &self.attrs {
            f.add_attribute(inkwell::attributes::AttributeLoc::Function, self.ctx.create_string_attribute(k, v));
        }
        self.func = Some(f);
        self.b.position_at_end(self.ctx.append_basic_block(f, "entry"));
        let p = |i| f.get_nth_param(i).unwrap();
        KernelArgs { args: p(0).into_pointer_value(), rows: p(1).into_int_value(), begin: p(2).into_int_value(), end: p(3).into_int_value(), scratch: p(4).into_pointer_value() }
    }

    pub fn ret(&self) {
        ok!(self.b.build_return(None));
    }

    /// Pointer `i` of the argument array.
    pub fn arg(&self, k: &KernelArgs<'ctx>, i: usize) -> PointerValue<'ctx> {
        let slot = unsafe { ok!(self.b.build_gep(self.ptr, k.args, &[self.int(i as u64)], "slot")) };
        ok!(self.b.build_load(self.ptr, slot, "arg")).into_pointer_value()
    }

    pub fn has_feature(&self, f: &str) -> bool {
        self.features.iter().any(|x| x == f)
    }

    /// base + bytes.
    pub fn byte_ptr(&self, base: PointerValue<'ctx>, bytes: IntValue<'ctx>) -> PointerValue<'ctx> {
        unsafe { ok!(self.b.build_gep(self.ctx.i8_type(), base, &[bytes], "")) }
    }

    /// An integer vector of type `ty` at `at`, unaligned.
    pub fn load_ints(&self, at: PointerValue<'ctx>, ty: VectorType<'ctx>) -> VectorValue<'ctx> {
        let v = ok!(self.b.build_load(ty, at, ""));
        ok!(v.as_instruction_value().unwrap().set_alignment(1));
        v.into_vector_value()
    }

    /// An integer vector stored at `at`, unaligned.
    pub fn store_ints(&self, at: PointerValue<'ctx>, v: VectorValue<'ctx>) {
        let s = ok!(self.b.build_store(at, v));
        ok!(s.set_alignment(1));
    }

    /// The integer in lane 0.
    pub fn extract_int(&self, v: VectorValue<'ctx>) -> IntValue<'ctx> {
        ok!(self.b.build_extract_element(v, self.i32.const_zero(), "")).into_int_value()
    }

    pub fn int(&self, n: u64) -> IntValue<'ctx> {
        self.i64.const_int(n, false)
    }

    pub fn add(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> IntValue<'ctx> {
        ok!(self.b.build_int_add(a, b, ""))
    }

    pub fn mul(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> IntValue<'ctx> {
        ok!(self.b.build_int_mul(a, b, ""))
    }

    pub fn min(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> IntValue<'ctx> {
        let lt = ok!(self.b.build_int_compare(IntPredicate::SLT, a, b, ""));
        ok!(self.b.build_select(lt, a, b, "")).into_int_value()
    }

    pub fn vt(&self, lanes: u32) -> VectorType<'ctx> {
        self.f32.vec_type(lanes)
    }

    fn elem(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>) -> PointerValue<'ctx> {
        unsafe { ok!(self.b.build_gep(self.f32, base, &[idx], "")) }
    }

    /// f32 × lanes at base[idx].
    pub fn load(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>, lanes: u32) -> VectorValue<'ctx> {
        let v = ok!(self.b.build_load(self.vt(lanes), self.elem(base, idx), ""));
        ok!(v.as_instruction_value().unwrap().set_alignment(4));
        v.into_vector_value()
    }

    /// base[idx], one f32.
    pub fn load_f32(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>) -> FloatValue<'ctx> {
        self.extract(self.load(base, idx, 1), 0)
    }

    pub fn store(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>, v: VectorValue<'ctx>) {
        let s = ok!(self.b.build_store(self.elem(base, idx), v));
        ok!(s.set_alignment(4));
    }

    /// i32 at base[idx], widened to i64.
    pub fn load_i32(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>) -> IntValue<'ctx> {
        let p = unsafe { ok!(self.b.build_gep(self.i32, base, &[idx], "")) };
        let v = ok!(self.b.build_load(self.i32, p, "")).into_int_value();
        ok!(self.b.build_int_s_extend(v, self.i64, ""))
    }

    pub fn splat(&self, x: FloatValue<'ctx>, lanes: u32) -> VectorValue<'ctx> {
        let undef = self.vt(lanes).get_undef();
        let one = ok!(self.b.build_insert_element(undef, x, self.int(0), ""));
        let mask = self.i32.vec_type(lanes).const_zero();
        ok!(self.b.build_shuffle_vector(one, undef, mask, ""))
    }

    /// An integer in every lane, of its own type.
    pub fn splat_int(&self, x: IntValue<'ctx>, lanes: u32) -> VectorValue<'ctx> {
        let ty = x.get_type().vec_type(lanes);
        let one = ok!(self.b.build_insert_element(ty.get_undef(), x, self.int(0), ""));
        ok!(self.b.build_shuffle_vector(one, ty.get_undef(), self.i32.vec_type(lanes).const_zero(), ""))
    }

    pub fn splat_const(&self, x: f64, lanes: u32) -> VectorValue<'ctx> {
        VectorType::const_vector(&vec![self.f32.const_float(x); lanes as usize])
    }

    pub fn fadd(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        ok!(self.b.build_float_add(a, b, ""))
    }
    pub fn fsub(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        ok!(self.b.build_float_sub(a, b, ""))
    }
    pub fn fmul(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        ok!(self.b.build_float_mul(a, b, ""))
    }
    pub fn fdiv(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        ok!(self.b.build_float_div(a, b, ""))
    }

    /// a / b for the elementwise functions, where a division per element would dominate: on
    /// AVX-512, b's reciprocal estimate (`vrcp14ps`, 14 bits) refined by one Newton step (~23
    /// bits), times a; elsewhere a division.
    pub fn fast_div(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        if a.get_type().get_size() != 16 || !self.has_feature("avx512f") {
            return self.fdiv(a, b);
        }
        let f = Intrinsic::find("llvm.x86.avx512.rcp14.ps.512").unwrap().get_declaration(&self.module, &[]).unwrap();
        let all = self.ctx.i16_type().const_all_ones();
        let r = ok!(self.b.build_call(f, &[b.into(), b.get_type().get_undef().into(), all.into()], "")).try_as_basic_value().basic().unwrap().into_vector_value();
        // r' = r + r (1 - b r)
        let e = self.fma(ok!(self.b.build_float_neg(b, "")), r, self.splat_const(1.0, 16));
        self.fmul(a, self.fma(r, e, r))
    }

    /// An overloaded intrinsic on vectors of type `ty`.
    pub fn intrinsic(&self, name: &str, ty: VectorType<'ctx>, args: &[BasicMetadataValueEnum<'ctx>]) -> BasicValueEnum<'ctx> {
        let f = Intrinsic::find(name).unwrap().get_declaration(&self.module, &[ty.into()]).unwrap();
        ok!(self.b.build_call(f, args, "")).try_as_basic_value().basic().unwrap()
    }

    /// A hint to bring the cache line holding `p` into every cache level, for reading.
    pub fn prefetch(&self, p: PointerValue<'ctx>) {
        let f = Intrinsic::find("llvm.prefetch").unwrap().get_declaration(&self.module, &[self.ptr.into()]).unwrap();
        let flag = |x: u64| self.i32.const_int(x, false).into();
        ok!(self.b.build_call(f, &[p.into(), flag(0), flag(3), flag(1)], ""));
    }

    /// a·b + c, fused where the target can.
    pub fn fma(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>, c: VectorValue<'ctx>) -> VectorValue<'ctx> {
        self.intrinsic("llvm.fmuladd", a.get_type(), &[a.into(), b.into(), c.into()]).into_vector_value()
    }

    /// Lanes rounded to the nearest integer (ties to even), as i32: one `vcvtps2dq` on AVX-512
    /// (which rounds as MXCSR says: to nearest even, as every thread starts).
    pub fn round_to_i32(&self, a: VectorValue<'ctx>) -> VectorValue<'ctx> {
        if a.get_type().get_size() == 16 && self.has_feature("avx512f") {
            let f = Intrinsic::find("llvm.x86.avx512.mask.cvtps2dq.512").unwrap().get_declaration(&self.module, &[]).unwrap();
            let (all, current) = (self.ctx.i16_type().const_all_ones(), self.i32.const_int(4, false));
            let args = [a.into(), self.i32.vec_type(16).get_undef().into(), all.into(), current.into()];
            return ok!(self.b.build_call(f, &args, "")).try_as_basic_value().basic().unwrap().into_vector_value();
        }
        let r = self.intrinsic("llvm.rint", a.get_type(), &[a.into()]).into_vector_value();
        ok!(self.b.build_float_to_signed_int(r, self.i32.vec_type(a.get_type().get_size()), ""))
    }

    /// The sum of an integer vector's lanes.
    pub fn reduce_add(&self, v: VectorValue<'ctx>) -> IntValue<'ctx> {
        self.intrinsic("llvm.vector.reduce.add", v.get_type(), &[v.into()]).into_int_value()
    }

    pub fn splat_i32(&self, x: u64, lanes: u32) -> VectorValue<'ctx> {
        VectorType::const_vector(&vec![self.i32.const_int(x, false); lanes as usize])
    }

    /// `vpdpbusd`: each of acc's 16 i32 lanes plus the 4 products of its bytes of `a` (unsigned)
    /// and `b` (signed), 64 bytes each.
    pub fn dpbusd(&self, acc: VectorValue<'ctx>, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let words = self.i32.vec_type(16);
        let [a, b] = [a, b].map(|v| ok!(self.b.build_bit_cast(v, words, "")).into_vector_value());
        let f = Intrinsic::find("llvm.x86.avx512.vpdpbusd.512").unwrap().get_declaration(&self.module, &[]).unwrap();
        ok!(self.b.build_call(f, &[acc.into(), a.into(), b.into()], "")).try_as_basic_value().basic().unwrap().into_vector_value()
    }

    /// `vpmaddubsw` (AVX2): 32 i16 lanes, each the sum of 2 products of adjacent bytes of `a`
    /// (unsigned) and `b` (signed), 64 bytes each. The sums saturate: callers keep them in i16.
    pub fn maddubs(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        self.per_half("llvm.x86.avx2.pmadd.ub.sw", &[a, b])
    }

    /// `vpmaddwd` against ones (AVX2): 32 i16 lanes summed in adjacent pairs into 16 i32.
    pub fn pair_sums(&self, v: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let ones = VectorType::const_vector(&vec![self.ctx.i16_type().const_int(1, false); 32]);
        self.per_half("llvm.x86.avx2.pmadd.wd", &[v, ones])
    }

    /// `vpsignb` (AVX2): the bytes of `a` negated where `b`'s are negative, zeroed where they are 0.
    pub fn sign_bytes(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        self.per_half("llvm.x86.avx2.psign.b", &[a, b])
    }

    /// A 256-bit x86 intrinsic on each 32-byte half of 64-byte operands (bit-cast to its
    /// parameter types); the two results side by side.
    fn per_half(&self, name: &str, args: &[VectorValue<'ctx>]) -> VectorValue<'ctx> {
        let f = Intrinsic::find(name).unwrap().get_declaration(&self.module, &[]).unwrap();
        let params = f.get_type().get_param_types();
        let lanes = |from: u32, n: u32| VectorType::const_vector(&(from..from + n).map(|i| self.i32.const_int(i as u64, false)).collect::<Vec<_>>());
        let halves: Vec<VectorValue> = (0..2)
            .map(|h| {
                let half_args: Vec<BasicMetadataValueEnum> = args
                    .iter()
                    .zip(&params)
                    .map(|(v, p)| {
                        let ty = p.into_vector_type();
                        let whole = ok!(self.b.build_bit_cast(*v, ty.get_element_type().into_int_type().vec_type(2 * ty.get_size()), "")).into_vector_value();
                        ok!(self.b.build_shuffle_vector(whole, whole, lanes(h * ty.get_size(), ty.get_size()), "")).into()
                    })
                    .collect();
                ok!(self.b.build_call(f, &half_args, "")).try_as_basic_value().basic().unwrap().into_vector_value()
            })
            .collect();
        ok!(self.b.build_shuffle_vector(halves[0], halves[1], lanes(0, 2 * halves[0].get_type().get_size()), ""))
    }

    /// `vdpbf16ps`: each of acc's 16 f32 lanes plus the 2 products of its bf16 pair of `a` and
    /// of `b`, 64 bytes each.
    pub fn dpbf16ps(&self, acc: VectorValue<'ctx>, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let f = Intrinsic::find("llvm.x86.avx512bf16.dpbf16ps.512").unwrap().get_declaration(&self.module, &[]).unwrap();
        let params = f.get_type().get_param_types();
        let [a, b] = [(a, 1), (b, 2)].map(|(v, i)| ok!(self.b.build_bit_cast(v, params[i].into_vector_type(), "")).into_vector_value());
        ok!(self.b.build_call(f, &[acc.into(), a.into(), b.into()], "")).try_as_basic_value().basic().unwrap().into_vector_value()
    }

    /// Two vectors of 16 f32 rounded to bf16 (nearest even), a's then b's: 32 words (`vcvtne2ps2bf16`).
    pub fn bf16_words(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let f = Intrinsic::find("llvm.x86.avx512bf16.cvtne2ps2bf16.512").unwrap().get_declaration(&self.module, &[]).unwrap();
        // words 0..16 from the second operand, 16..32 from the first
        let v = ok!(self.b.build_call(f, &[b.into(), a.into()], "")).try_as_basic_value().basic().unwrap();
        ok!(self.b.build_bit_cast(v, self.ctx.i16_type().vec_type(32), "")).into_vector_value()
    }

    /// Two vectors of 16 f32 rounded to bf16 (nearest even) and interleaved: 16 pairs (a[c], b[c])
    /// as 64 bytes (`vcvtne2ps2bf16`, then a word shuffle).
    pub fn bf16_pairs(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let words = self.bf16_words(a, b);
        let mask: Vec<_> = (0..32u64).map(|i| self.i32.const_int(i / 2 + 16 * (i % 2), false)).collect();
        let pairs = ok!(self.b.build_shuffle_vector(words, words, VectorType::const_vector(&mask), ""));
        ok!(self.b.build_bit_cast(pairs, self.ctx.i8_type().vec_type(64), "")).into_vector_value()
    }

    /// An AMX intrinsic (tile numbers as i8 constants) for its effect.
    pub fn amx(&self, name: &str, args: &[BasicMetadataValueEnum<'ctx>]) {
        let f = Intrinsic::find(name).unwrap().get_declaration(&self.module, &[]).unwrap();
        ok!(self.b.build_call(f, args, ""));
    }

    pub fn fmax(&self, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
        self.intrinsic("llvm.maxnum", a.get_type(), &[a.into(), b.into()]).into_vector_value()
    }

    pub fn sqrt(&self, a: VectorValue<'ctx>) -> VectorValue<'ctx> {
        self.intrinsic("llvm.sqrt", a.get_type(), &[a.into()]).into_vector_value()
    }

    /// Σ lanes, in any order.
    pub fn hsum(&self, v: VectorValue<'ctx>) -> FloatValue<'ctx> {
        let f = Intrinsic::find("llvm.vector.reduce.fadd").unwrap().get_declaration(&self.module, &[v.get_type().into()]).unwrap();
        let sum = ok!(self.b.build_call(f, &[self.f32.const_zero().into(), v.into()], "")).try_as_basic_value().basic().unwrap();
        // reassociation lets LLVM reduce as a tree instead of lane by lane
        let _ = sum.as_instruction_value().unwrap().set_fast_math_flags(FastMathFlags::all());
        sum.into_float_value()
    }

    /// max over lanes, none of them NaN: then the order is free, and LLVM reduces as a tree
    /// instead of lane by lane (each step a NaN test).
    pub fn hmax(&self, v: VectorValue<'ctx>) -> FloatValue<'ctx> {
        let f = Intrinsic::find("llvm.vector.reduce.fmax").unwrap().get_declaration(&self.module, &[v.get_type().into()]).unwrap();
        let max = ok!(self.b.build_call(f, &[v.into()], "")).try_as_basic_value().basic().unwrap();
        let _ = max.as_instruction_value().unwrap().set_fast_math_flags(FastMathFlags::NoNaNs | FastMathFlags::NoSignedZeros);
        max.into_float_value()
    }

    pub fn extract(&self, v: VectorValue<'ctx>, i: u64) -> FloatValue<'ctx> {
        ok!(self.b.build_extract_element(v, self.i64.const_int(i, false), "")).into_float_value()
    }

    pub fn insert(&self, v: VectorValue<'ctx>, x: FloatValue<'ctx>, i: IntValue<'ctx>) -> VectorValue<'ctx> {
        ok!(self.b.build_insert_element(v, x, i, ""))
    }

    pub fn select(&self, cond: IntValue<'ctx>, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> FloatValue<'ctx> {
        ok!(self.b.build_select(cond, a, b, "")).into_float_value()
    }

    /// e^x for every lane: Cody–Waite range reduction and a degree-6 polynomial (≈1 ulp),
    /// saturating below at e^-87 (≈ 0) and above at e^88.3 (below f32's largest), so that no
    /// input gives NaN or ∞.
    pub fn exp(&self, x: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let lanes = x.get_type().get_size();
        let c = |v: f64| self.splat_const(v, lanes);
        let x = self.fmax(x, c(-87.3));
        let x = self.intrinsic("llvm.minnum", x.get_type(), &[x.into(), c(88.3).into()]).into_vector_value();
        let n = self.intrinsic("llvm.rint", x.get_type(), &[self.fmul(x, c(std::f64::consts::LOG2_E)).into()]).into_vector_value();
        let r = self.fma(n, c(-0.693_145_751_953_125), x);
        let r = self.fma(n, c(-1.428_606_765_330_187e-6), r);
        let mut p = c(1.987_569_150_0e-4);
        for coef in [1.398_199_950_7e-3, 8.333_451_907_3e-3, 4.166_579_589_4e-2, 1.666_666_545_9e-1, 5.000_000_120_1e-1, 1.0, 1.0] {
            p = self.fma(p, r, c(coef));
        }
        // 2^n: n into the exponent field.
        let ivt = self.i32.vec_type(lanes);
        let ni = ok!(self.b.build_float_to_signed_int(n, ivt, ""));
        let splat_i = |v: u64| VectorType::const_vector(&vec![self.i32.const_int(v, false); lanes as usize]);
        let bits = ok!(self.b.build_left_shift(ok!(self.b.build_int_add(ni, splat_i(127), "")), splat_i(23), ""));
        let scale = ok!(self.b.build_bit_cast(bits, x.get_type(), "")).into_vector_value();
        self.fmul(p, scale)
    }

    /// x / (1 + e^-z)
    fn times_sigmoid(&self, x: VectorValue<'ctx>, z: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let lanes = x.get_type().get_size();
        let neg = ok!(self.b.build_float_neg(z, ""));
        self.fast_div(x, self.fadd(self.splat_const(1.0, lanes), self.exp(neg)))
    }

    /// x / (1 + e^-x)
    pub fn silu(&self, x: VectorValue<'ctx>) -> VectorValue<'ctx> {
        self.times_sigmoid(x, x)
    }

    /// x · sigmoid(2u), u = sqrt(2/π)(x + 0.044715x³): the same as 0.5x(1 + tanh u), without
    /// its cancellation for large negative x.
    pub fn gelu_tanh(&self, x: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let lanes = x.get_type().get_size();
        let c = |v: f64| self.splat_const(v, lanes);
        let inner = self.fma(self.fmul(self.fmul(x, x), c(0.044715)), x, x);
        self.times_sigmoid(x, self.fmul(inner, c(2.0 * (2.0 / std::f64::consts::PI).sqrt())))
    }

    /// e^z - 1, without the cancellation of exp(z) - 1 near 0: a Taylor polynomial for |z| < 0.5
    /// (its error below 1e-8 relative there).
    fn expm1(&self, z: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let lanes = z.get_type().get_size();
        let c = |v: f64| self.splat_const(v, lanes);
        let mut p = c(1.0 / 40320.0);
        for k in (1..=7).rev() {
            p = self.fma(p, z, c(1.0 / (1..=k).product::<u64>() as f64));
        }
        let small = self.fmul(p, z);
        let abs = self.intrinsic("llvm.fabs", z.get_type(), &[z.into()]).into_vector_value();
        let near = ok!(self.b.build_float_compare(FloatPredicate::OLT, abs, c(0.5), ""));
        ok!(self.b.build_select(near, small, self.fsub(self.exp(z), c(1.0)), "")).into_vector_value()
    }

    /// cap · tanh(x / cap), tanh(u) = m / (m + 2) with m = e^{2u} - 1.
    pub fn softcap(&self, x: VectorValue<'ctx>, cap: f32) -> VectorValue<'ctx> {
        let lanes = x.get_type().get_size();
        let c = |v: f64| self.splat_const(v, lanes);
        // past |2u| = 40, tanh is ±1 in f32; the bound keeps e^{2u} finite
        let z = self.fmul(x, c(2.0 / cap as f64));
        let z = self.intrinsic("llvm.minnum", z.get_type(), &[self.fmax(z, c(-40.0)).into(), c(40.0).into()]).into_vector_value();
        let m = self.expm1(z);
        self.fmul(self.fast_div(m, self.fadd(m, c(2.0))), c(cap as f64))
    }

    pub fn lt(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> IntValue<'ctx> {
        ok!(self.b.build_int_compare(IntPredicate::SLT, a, b, ""))
    }

    pub fn fgt(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> IntValue<'ctx> {
        ok!(self.b.build_float_compare(FloatPredicate::OGT, a, b, ""))
    }

    /// for (i = start; i < end; i += step) carrying `init` values; returns their final values.
    /// The body gets the index and the carried values and returns the next ones.
    pub fn for_carry(
        &self,
        start: IntValue<'ctx>,
        end: IntValue<'ctx>,
        step: u64,
        init: Vec<BasicValueEnum<'ctx>>,
        body: &mut dyn FnMut(&Self, IntValue<'ctx>, Vec<BasicValueEnum<'ctx>>) -> Vec<BasicValueEnum<'ctx>>,
    ) -> (IntValue<'ctx>, Vec<BasicValueEnum<'ctx>>) {
        let f = self.func.unwrap();
        let pre = self.b.get_insert_block().unwrap();
        let head = self.ctx.append_basic_block(f, "loop");
        let bodyb = self.ctx.append_basic_block(f, "body");
        let exit = self.ctx.append_basic_block(f, "exit");
        ok!(self.b.build_unconditional_branch(head));
        self.b.position_at_end(head);
        let i = ok!(self.b.build_phi(self.i64, "i"));
        let phis: Vec<_> = init.iter().map(|v| ok!(self.b.build_phi(v.get_type(), "c"))).collect();
        i.add_incoming(&[(&start, pre)]);
        for (p, v) in phis.iter().zip(&init) {
            p.add_incoming(&[(v, pre)]);
        }
        let iv = i.as_basic_value().into_int_value();
        let vals: Vec<BasicValueEnum> = phis.iter().map(|p| p.as_basic_value()).collect();
        // continue while i + step <= end (whole steps only)
        let next_end = self.add(iv, self.int(step));
        let go = ok!(self.b.build_int_compare(IntPredicate::SLE, next_end, end, ""));
        ok!(self.b.build_conditional_branch(go, bodyb, exit));
        self.b.position_at_end(bodyb);
        let out = body(self, iv, vals.clone());
        let latch = self.b.get_insert_block().unwrap();
        let next = self.add(iv, self.int(step));
        i.add_incoming(&[(&next, latch)]);
        for (p, v) in phis.iter().zip(&out) {
            p.add_incoming(&[(v, latch)]);
        }
        ok!(self.b.build_unconditional_branch(head));
        self.b.position_at_end(exit);
        (iv, vals)
    }

    /// if (cond) body.
    pub fn when(&self, cond: IntValue<'ctx>, body: &mut dyn FnMut(&Self)) {
        let f = self.func.unwrap();
        let then = self.ctx.append_basic_block(f, "then");
        let after = self.ctx.append_basic_block(f, "after");
        ok!(self.b.build_conditional_branch(cond, then, after));
        self.b.position_at_end(then);
        body(self);
        ok!(self.b.build_unconditional_branch(after));
        self.b.position_at_end(after);
    }

    /// for (i = start; i + step <= end; i += step); returns where it stopped.
    pub fn for_each(&self, start: IntValue<'ctx>, end: IntValue<'ctx>, step: u64, body: &mut dyn FnMut(&Self, IntValue<'ctx>)) -> IntValue<'ctx> {
        self.for_carry(start, end, step, vec![], &mut |cg, i, v| {
            body(cg, i);
            v
        })
        .0
    }

    /// `body(i, lanes)` over start..end: whole vectors of `self.lanes`, then single elements.
    pub fn for_lanes(&self, start: IntValue<'ctx>, end: IntValue<'ctx>, body: &mut dyn FnMut(&Self, IntValue<'ctx>, u32)) {
        let lanes = self.lanes;
        let rest = self.for_each(start, end, lanes as u64, &mut |cg, i| body(cg, i, lanes));
        self.for_each(rest, end, 1, &mut |cg, i| body(cg, i, 1));
    }
}
