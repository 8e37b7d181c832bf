//! `kiln`: compile models into artifacts, run them, inspect them.
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use runtime::chat_template::{ChatTemplate, Message};
use runtime::generate::{generate, Request};
use runtime::sampler::{Sampler, SamplerConfig};
use runtime::tokenizer::Tokenizer;

#[derive(Parser)]
#[command(name = "kiln", version, about = "Graph-compiled LLM inference on the CPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a model (Hugging Face folder or GGUF file) into a native artifact.
    Compile {
        model: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// host, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4
        #[arg(long, default_value = "host")]
        target_cpu: String,
    },
    /// Generate text from a prompt (argument, --file, or standard input).
    #[command(allow_negative_numbers = true)]
    Run {
        artifact: PathBuf,
        prompt: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        /// Send the prompt as is, without the chat template.
        #[arg(long)]
        no_chat: bool,
        #[arg(short, long)]
        system: Option<String>,
        #[arg(long, default_value_t = 256)]
        max_tokens: usize,
        /// 0 = greedy
        #[arg(long)]
        temperature: Option<f32>,
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long)]
        top_p: Option<f32>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// KV-cache size in tokens (default: the model's context, at most 4096)
        #[arg(long)]
        ctx: Option<usize>,
        /// Timings on standard error.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Describe an artifact.
    Info { artifact: PathBuf },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("kiln: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Compile { model, output, target_cpu } => compile(&model, &output, &target_cpu),
        Command::Run { artifact, prompt, file, no_chat, system, max_tokens, temperature, top_k, top_p, seed, ctx, verbose } => {
            let prompt = match (prompt, file) {
                (Some(p), _) => p,
                (None, Some(f)) => std::fs::read_to_string(&f).with_context(|| format!("{}", f.display()))?,
                (None, None) => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s
                }
            };
            if let Some(t) = temperature.filter(|t| !(t.is_finite() && *t >= 0.0)) {
                bail!("--temperature must be 0 or more, got {t}");
            }
            if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                bail!("--top-p must be in (0, 1], got {p}");
            }
            let mut model = runtime::Model::open(&artifact, Some(ctx.unwrap_or(4096)))?;
            let meta = &model.artifact.meta;
            let tok = Tokenizer::new(&meta.tokenizer, meta.bos_token.as_deref(), meta.add_bos)?;
            let text = if no_chat {
                prompt
            } else {
                let template = meta.chat_template.as_deref().context("this model has no chat template; use --no-chat")?;
                let mut messages = vec![];
                if let Some(s) = system {
                    messages.push(Message { role: "system".into(), content: s });
                }
                messages.push(Message { role: "user".into(), content: prompt });
                let vars = serde_json::json!({"messages": messages, "add_generation_prompt": true, "bos_token": meta.bos_token, "eos_token": meta.eos_token});
                ChatTemplate::new(template, None)?.render(&vars)?
            };
            let ids = tok.encode(&text)?;
            if ids.is_empty() {
                bail!("the prompt is empty");
            }
            let g = &meta.generation;
            let mut sampler = Sampler::new(SamplerConfig {
                temperature: temperature.or(g.temperature).unwrap_or(0.0),
                top_k: top_k.or(g.top_k).unwrap_or(0),
                top_p: top_p.or(g.top_p).unwrap_or(1.0),
                seed,
            });
            let stop = meta.eos_token_ids.clone();
            let mut stdout = std::io::stdout().lock();
            let (_, stats) = generate(&mut model, &tok, &mut sampler, &Request { prompt: &ids, max_tokens, stop_ids: &stop }, &mut |piece| {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
            })?;
            if std::io::stdout().is_terminal() {
                let _ = writeln!(stdout);
            }
            if verbose {
                eprintln!("{}", stats.summary());
            }
            Ok(())
        }
        Command::Info { artifact } => {
            let a = runtime::artifact::Artifact::open(&artifact, false)?;
            print!("{}", compiler::info::describe(&a));
            Ok(())
        }
    }
}

fn compile(model: &Path, output: &Path, target_cpu: &str) -> Result<()> {
    let source = compiler::load_model(model)?;
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("{}: output folder does not exist", dir.display());
        }
    }
    let options = compiler::compile::Options { target_cpu: target_cpu.into(), ..Default::default() };
    let interactive = std::io::stderr().is_terminal();
    let report = compiler::compile::compile(&source, output, &options, &mut |stage| {
        if interactive {
            eprintln!("kiln: {stage}…")
        }
    })?;
    let timings: Vec<String> = report.timings.iter().map(|(n, s)| format!("{n} {s:.2}s")).collect();
    eprintln!(
        "kiln: wrote {} ({:.1} MB, {} kernels, {} steps; {})",
        output.display(),
        report.bytes as f64 / 1e6,
        report.kernels,
        report.steps,
        timings.join(", ")
    );
    Ok(())
}
