//! `kiln info`: the report of compiler::info, as text, JSON, or the fused graph as Graphviz.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// An artifact, a Hugging Face folder or a .gguf file.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the fused graph as Graphviz to this file ("-" for standard output).
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
}

pub fn info(args: InfoArgs) -> Result<()> {
    let (report, compiled) = compiler::info::load(&args.model)?;
    if let Some(path) = &args.dot {
        let dot = compiler::info::dot::to_dot(&compiled);
        if path.as_os_str() == "-" {
            print!("{dot}");
            return Ok(());
        }
        std::fs::write(path, dot).with_context(|| format!("{}", path.display()))?;
    }
    let bandwidth = runtime::info::bandwidth::measure();
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        json["machine"] = serde_json::json!({
            "read_bandwidth_bytes_per_s": bandwidth,
            "decode_roofline_tok_s": report.roofline_decode(bandwidth, 0),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", report.text(Some(bandwidth)));
    }
    Ok(())
}
