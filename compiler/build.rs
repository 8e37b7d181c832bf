//! Embeds every graphs/*.json into the compiler (as `GRAPHS` in graph.rs), so that a new
//! architecture is a Python file and `make graphs`, with no Rust change.
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../graphs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut graphs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("graphs/ next to compiler/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p.canonicalize().unwrap().display().to_string()))
        .collect();
    graphs.sort();
    let entries: String = graphs.iter().map(|(arch, path)| format!("    ({arch:?}, include_str!({path:?})),\n")).collect();
    let code = format!("/// (architecture, graph JSON) for every graph in graphs/.\npub const GRAPHS: &[(&str, &str)] = &[\n{entries}];\n");
    std::fs::write(Path::new(&std::env::var("OUT_DIR").unwrap()).join("graphs.rs"), code).unwrap();
}
