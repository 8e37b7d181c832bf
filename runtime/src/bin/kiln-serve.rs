//! `kiln-serve`: the OpenAI-compatible server alone, built from the runtime crate only (no
//! compiler, no LLVM): `cargo build --release -p kiln-runtime --bin kiln-serve`. The same as
//! `kiln serve`.
use clap::Parser;

fn main() {
    let args = runtime::serve::ServeArgs::parse();
    if let Err(e) = runtime::serve::serve(args.options()) {
        eprintln!("kiln-serve: {e}");
        std::process::exit(1);
    }
}
