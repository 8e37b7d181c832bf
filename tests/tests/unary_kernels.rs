//! The elementwise functions kernels compute (silu, gelu_tanh, softcap) against their definitions
//! in f64, over -40..40 and the values where they bend, on AVX-512 (where present), AVX2 and SSE.
use compiler::fuse::Unary;
use compiler::lower::kernel::{KExpr, KernelSet, KernelSpec};
use compiler::lower::target::TargetCpu;
use kiln_tests::*;

fn reference(op: Unary, x: f64) -> f64 {
    match op {
        Unary::Silu => x / (1.0 + (-x).exp()),
        Unary::GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh()),
        Unary::Softcap(c) => c as f64 * (x / c as f64).tanh(),
        Unary::Scale(c) => x * c as f64,
    }
}

#[test]
fn unary_functions_match_their_definitions() {
    const WIDTH: usize = 64;
    let xs: Vec<f32> = (0..WIDTH * 50).map(|i| -40.0 + 80.0 * i as f32 / (WIDTH * 50 - 1) as f32).chain([0.0, -0.0, 1e-6, -1e-6, 0.5, -0.5, 3.0, -3.0]).collect();
    let xs: Vec<f32> = xs.iter().copied().chain(std::iter::repeat_n(1.0, WIDTH - xs.len() % WIDTH)).collect();
    let rows = xs.len() / WIDTH;
    for op in [Unary::Silu, Unary::GeluTanh, Unary::Softcap(30.0), Unary::Softcap(0.5)] {
        for target in ["host", "x86-64-v3", "x86-64"] {
            let mut kernels = KernelSet::default();
            let name = kernels.intern(KernelSpec::Map { width: WIDTH, inputs: 1, expr: KExpr::Unary(op, Box::new(KExpr::Row(0))) });
            let (_, code) = compiler::lower::build(&kernels, &TargetCpu::resolve(target).unwrap()).unwrap();
            let loaded = runtime::kernels::Kernels::load(&code, &[&name]).unwrap();
            let mut out = vec![f32::NAN; xs.len()];
            let args = [xs.as_ptr() as *mut u8, out.as_mut_ptr() as *mut u8];
            // SAFETY: a map kernel reads rows × WIDTH values of its input and writes as many.
            unsafe { loaded.get(&name)(args.as_ptr(), rows as i64, 0, rows as i64, std::ptr::null_mut()) };
            let want: Vec<f32> = xs.iter().map(|&x| reference(op, x as f64) as f32).collect();
            let err = max_rel_err(&out, &want);
            assert!(err < 2e-6, "{op:?} on {target}: differs from its definition by {err}");
        }
    }
}
