//! Lowering: kernel specs -> LLVM IR -> native code for the target CPU.
pub mod affine;
pub mod amx;
pub mod attention;
pub mod codegen;
pub mod copy;
pub mod dot;
pub mod expr;
pub mod kernel;
pub mod map;
pub mod matmul;
pub mod norm;
pub mod rope;
pub mod target;
pub mod weight_format;

use inkwell::context::Context;

use crate::error::Result;
use codegen::Cg;
use kernel::{KernelSet, KernelSpec};
use target::TargetCpu;

/// Emits one LLVM function per kernel spec and builds them into a shared object.
/// Returns (optimised IR, shared object bytes).
pub fn build(kernels: &KernelSet, cpu: &TargetCpu) -> Result<(String, Vec<u8>)> {
    let ctx = Context::create();
    let mut cg = Cg::new(&ctx, cpu.lanes(), cpu.function_attributes(), cpu.features.clone());
    for (name, spec) in kernels.names().iter().zip(&kernels.specs) {
        emit(&mut cg, name, spec);
    }
    let work = tempfile::tempdir().map_err(crate::error::io(std::path::Path::new("temporary directory")))?;
    cpu.build(&cg.module, work.path())
}

pub fn emit(cg: &mut Cg, name: &str, spec: &KernelSpec) {
    match spec {
        KernelSpec::Map { width, inputs, expr } => map::emit(cg, name, *width, *inputs, expr),
        KernelSpec::Matmul { k, n, inputs, input, epilogue, format, dot } => matmul::emit(cg, name, *k, *n, *inputs, input, epilogue, *format, *dot),
        KernelSpec::Gather { width, format } => copy::gather(cg, name, *width, *format),
        KernelSpec::KvWrite { width, dtype } => copy::kv_write(cg, name, *width, *dtype),
        KernelSpec::Rope { width, head_dim, rotary_dim } => rope::emit(cg, name, *width, *head_dim, *rotary_dim),
        KernelSpec::HeadRmsNorm { width, head_dim, eps } => norm::head_rms_norm(cg, name, *width, *head_dim, *eps),
        KernelSpec::Attention(spec) => attention::emit(cg, name, spec),
    }
}
