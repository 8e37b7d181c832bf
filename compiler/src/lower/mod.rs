//! Lowering: kernel specs -> LLVM IR -> native code for the target CPU.
pub mod affine;
pub mod amx;
pub mod attention;
pub mod attention_amx;
pub mod attention_flash;
pub mod attention_tile;
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

/// Emits one LLVM function per kernel spec and builds them into a shared object: the kernels are
/// shared out between one module per thread (LLVM's optimisation and code generation take most
/// of a compile), each an object file, linked together. Returns (optimised IR, shared object bytes).
pub fn build(kernels: &KernelSet, cpu: &TargetCpu) -> Result<(String, Vec<u8>)> {
    let work = tempfile::tempdir().map_err(crate::error::io(std::path::Path::new("temporary directory")))?;
    let names = kernels.names();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(names.len()).max(1);
    let objects: Vec<_> = (0..threads).map(|t| work.path().join(format!("kernels{t}.o"))).collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by_key(|&i| !matches!(kernels.specs[i], KernelSpec::Matmul { .. }));
    let irs: Vec<Result<String>> = std::thread::scope(|scope| {
        let jobs: Vec<_> = objects
            .iter()
            .enumerate()
            .map(|(t, obj)| {
                let (names, order) = (&names, &order);
                scope.spawn(move || {
                    let ctx = Context::create();
                    let mut cg = Cg::new(&ctx, cpu.lanes(), cpu.function_attributes(), cpu.features.clone());
                    // every thread-th kernel, matmuls (the big ones) first, so that they spread evenly
                    for &i in order.iter().skip(t).step_by(threads) {
                        emit(&mut cg, &names[i], &kernels.specs[i]);
                    }
                    cpu.object(&cg.module, obj)
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().expect("a code-generation thread panicked")).collect()
    });
    let ir = irs.into_iter().collect::<Result<Vec<_>>>()?.concat();
    Ok((ir, TargetCpu::link(&objects, work.path())?))
}

/// The scratch a thread needs for every kernel of `kernels` that takes some (AMX matmuls,
/// attention's tile paths) in passes of up to `rows` rows.
pub fn plan_scratch(kernels: &KernelSet, features: &[String], rows: usize) -> usize {
    let bytes = |s: &KernelSpec| match s {
        KernelSpec::Matmul { k, format, dot: true, .. } if amx::supports(features, *format, *k) => amx::scratch_bytes(*k, rows),
        KernelSpec::Attention(a) => attention::scratch_bytes(features, a),
        _ => 0,
    };
    kernels.specs.iter().map(bytes).max().unwrap_or(0)
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
