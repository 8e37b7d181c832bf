//! `kiln info ARTIFACT`: the report the compiler stored in it (runtime::info), with this
//! machine's read bandwidth and the decode roofline it implies, and whether it grants AMX tiles,
//! as text or JSON.
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::info::Report;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// An artifact (with the compiler's `kiln`, also a Hugging Face folder or a .gguf file).
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the fused graph as Graphviz to this file ("-" for standard output; needs the compiler's `kiln`).
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
}

/// An artifact's stored report.
pub fn artifact_report(args: &InfoArgs) -> Result<Report> {
    if args.dot.is_some() {
        anyhow::bail!("--dot needs the compiler's `kiln` (this build has no graphs)");
    }
    Ok(crate::artifact::Artifact::open(&args.model, false)?.meta.report)
}

/// Prints `report` with this machine's measured bandwidth.
pub fn print(report: &Report, json: bool) -> Result<()> {
    let bandwidth = crate::info::bandwidth::measure();
    if json {
        let mut value = serde_json::to_value(report)?;
        value["machine"] = serde_json::json!({
            "read_bandwidth_bytes_per_s": bandwidth,
            "decode_roofline_tok_s": report.roofline_decode(bandwidth, 0),
            "amx_granted": crate::cpu::amx_granted(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", report.text(Some(bandwidth)));
        let amx = if crate::cpu::amx_granted() { "granted (matmuls built for them use them in passes of 64+ rows)" } else { "not available (no AMX, not granted by Linux, or KILN_AMX=0)" };
        println!("this machine AMX tiles {amx}");
    }
    Ok(())
}
