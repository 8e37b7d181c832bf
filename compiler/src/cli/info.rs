//! `kiln info`: the report of compiler::info for a model or an artifact, printed as runtime's
//! `info` prints it, or the fused graph as Graphviz.
use anyhow::{Context, Result};
use runtime::cli::info::InfoArgs;

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
    runtime::cli::info::print(&report, args.json)
}
