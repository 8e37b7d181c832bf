//! `kiln convert`: a model in, a GGUF file or an MLX folder out.
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use compiler::lower::weight_format::WeightFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum To {
    Gguf,
    Mlx,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// A Hugging Face folder, an MLX folder, a .gguf file, or org/name from the local Hugging Face cache.
    pub model: PathBuf,
    #[arg(long, value_enum)]
    pub to: To,
    /// GGUF: q8_0, q4_0, bf16, f16 or f32 (default: keep GGUF-typed weights, MLX groups as f16).
    /// MLX: 2bit, 3bit, 4bit, 5bit, 6bit or 8bit (default: keep MLX groups, other matrices as floats).
    #[arg(long)]
    pub quant: Option<String>,
    /// MLX: values per scale and bias (32, 64 or 128)
    #[arg(long, default_value_t = 64)]
    pub group_size: u64,
    /// The GGUF file, or the MLX folder, to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn convert(args: ConvertArgs) -> Result<()> {
    let quant = args.quant.as_deref().map(str::to_lowercase);
    let source = compiler::load_model(&args.model)?;
    match args.to {
        To::Gguf => {
            let quant = match quant.as_deref() {
                None => None,
                Some(q @ ("q8_0" | "q4_0" | "q4_k" | "bf16" | "f16" | "f32")) => WeightFormat::from_name(&q.to_uppercase()),
                Some(q) => bail!("--quant {q} cannot be written to GGUF (q8_0, q4_0, q4_k, bf16, f16 or f32)"),
            };
            compiler::convert::to_gguf::write(&source, quant, &args.output)?;
        }
        To::Mlx => {
            let bits = match quant.as_deref() {
                None => None,
                Some(q) => match q.strip_suffix("bit").and_then(|b| b.parse::<u64>().ok()) {
                    Some(bits) => Some(bits),
                    None => bail!("--quant {q} cannot be written to MLX (2bit, 3bit, 4bit, 5bit, 6bit or 8bit)"),
                },
            };
            compiler::convert::to_mlx::write(&source, bits.map(|b| (b, args.group_size)), &args.output)?;
        }
    }
    eprintln!("kiln: wrote {}", args.output.display());
    Ok(())
}
