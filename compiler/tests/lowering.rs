//! The optimised LLVM IR of a small kernel, pinned whole: a Q4_0 embedding gather for AVX2
//! (x86-64-v3), where the in-register dequantisation (nibble unpacking, f16 scale conversion,
//! 8-lane vectors) is easy to read and any change to it shows.
use compiler::lower::kernel::{KernelSet, KernelSpec};
use compiler::lower::target::TargetCpu;
use compiler::lower::weight_format::WeightFormat;

#[test]
fn q4_0_gather_for_avx2() {
    let mut kernels = KernelSet::default();
    kernels.intern(KernelSpec::Gather { width: 64, format: WeightFormat::Q4_0 });
    let cpu = TargetCpu::resolve("x86-64-v3").unwrap();
    let (ir, code) = compiler::lower::build(&kernels, &cpu).unwrap();
    assert!(code.starts_with(b"\x7fELF"), "a shared object");
    // the IR after the module header (whose target triple and data layout are the host's)
    let body = &ir[ir.find("define").unwrap()..];
    insta::assert_snapshot!(body);
}
