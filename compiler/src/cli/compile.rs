//! `kiln compile`: a model in, an artifact out, with a progress bar on a terminal and the time
//! each stage took.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use compiler::compile::{Options, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use runtime::plan::KvDtype;

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// A Hugging Face folder, a .gguf file, or org/name from the local Hugging Face cache.
    pub model: PathBuf,
    #[arg(short, long)]
    pub output: PathBuf,
    /// host, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4
    #[arg(long, default_value = "host")]
    pub target_cpu: String,
    /// native: keep each weight's format (f16, bf16, GGUF blocks) where kernels read it; f32: convert all
    #[arg(long, value_enum, default_value = "native")]
    pub weights: compiler::storage::WeightMode,
    /// Quantise float (f32, f16, bf16) matmul weights and embedding tables: q8_0, q4_0, q4_k (rows
    /// that are not whole super-blocks of 256: q5_0) or bf16
    #[arg(long, value_parser = ["q8_0", "q4_0", "q4_k", "bf16"])]
    pub quant: Option<String>,
    /// How the KV cache stores keys and values: f16 (half the bytes per attended position), q8_0
    /// (GGUF's 8-bit blocks of 32: 34 bytes per 32 values) or f32
    #[arg(long, value_parser = ["f16", "q8_0", "f32"], default_value = "f16")]
    pub kv: String,
    /// Keep every value Kiln computes in f32 — the KV cache, and matmul activations (no 8-bit
    /// integer dot products) — for comparisons with references
    #[arg(long, conflicts_with = "kv")]
    pub exact: bool,
    /// Also write the kernels' optimised LLVM IR to this file.
    #[arg(long, value_name = "FILE")]
    pub emit_llvm: Option<PathBuf>,
}

pub fn compile(args: CompileArgs) -> Result<()> {
    let out = &args.output;
    if out.is_dir() {
        bail!("{}: is a folder; give the artifact's file name", out.display());
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("{}: output folder does not exist", dir.display());
        }
    }
    // fail now, not after minutes of work, when the artifact cannot be written
    let existed = out.exists();
    std::fs::OpenOptions::new().append(true).create(true).open(out).with_context(|| format!("{}: cannot write the artifact here", out.display()))?;
    if !existed {
        let _ = std::fs::remove_file(out);
    }
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    bar.enable_steady_tick(Duration::from_millis(100));
    bar.set_message("reading the model");
    let source = compiler::load_model(&args.model)?;
    let kv = match args.kv.as_str() {
        _ if args.exact => KvDtype::F32,
        "f32" => KvDtype::F32,
        "q8_0" => KvDtype::Q8_0,
        _ => KvDtype::F16,
    };
    let quant = args.quant.as_deref().and_then(|q| compiler::lower::weight_format::WeightFormat::from_name(&q.to_uppercase()));
    let options = Options { target_cpu: args.target_cpu.clone(), weights: args.weights, emit_llvm: args.emit_llvm.clone(), kv, quant, exact: args.exact, ..Default::default() };
    let bytes_style = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})").unwrap().progress_chars("=> ");
    let report = compiler::compile::compile(&source, out, &options, &mut |p| match p {
        Progress::Stage(stage) => bar.set_message(stage.to_string()),
        Progress::Weights { done, total } => {
            if bar.length() != Some(total) {
                bar.set_style(bytes_style.clone());
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    });
    bar.finish_and_clear();
    let report = report?;
    let timings: Vec<String> = report.timings.iter().map(|(n, s)| format!("{n} {s:.2}s")).collect();
    eprintln!(
        "kiln: wrote {} ({:.1} MB, {} kernels, {} steps; {})",
        out.display(),
        report.bytes as f64 / 1e6,
        report.kernels,
        report.steps,
        timings.join(", ")
    );
    Ok(())
}
