//! Every input the fuzzers (`make fuzz`) found to crash, hang or over-allocate a reader, kept in
//! tests/fixtures/fuzz/TARGET/ and run through the same reader: each now ends in a clean result.
//! Valid inputs like the fuzzers' seeds must be read whole, so that the targets reach past the
//! first check.
use kiln_tests::readers::{self, SEPARATOR};
use kiln_tests::*;

/// A reader of outside bytes: whether it read the input whole.
type Reader = fn(&[u8]) -> bool;

const TARGETS: [(&str, Reader); 6] = [
    ("gguf", readers::gguf),
    ("safetensors_folder", readers::safetensors_folder),
    ("artifact", readers::artifact),
    ("graph", readers::graph),
    ("chat_template", readers::chat_template),
    ("tokenizer", readers::tokenizer),
];

#[test]
fn inputs_found_by_fuzzing_are_read_cleanly() {
    let mut count = 0;
    for (target, read) in TARGETS {
        let Ok(dir) = std::fs::read_dir(fixture("fuzz").join(target)) else { continue };
        for file in dir {
            let path = file.unwrap().path();
            let started = std::time::Instant::now();
            read(&std::fs::read(&path).unwrap());
            assert!(started.elapsed().as_secs() < 10, "{} took {:?}", path.display(), started.elapsed());
            count += 1;
        }
    }
    eprintln!("{count} inputs found by fuzzing read cleanly");
}

#[test]
fn valid_inputs_are_read_whole() {
    let read = |path: std::path::PathBuf| std::fs::read(path).unwrap();
    let tiny = fixture("llama_tied_gqa");
    let config = read(tiny.join("config.json"));
    assert!(readers::safetensors_folder(&[&config[..], SEPARATOR, &read(tiny.join("model.safetensors"))].concat()));
    assert!(readers::graph(&[&read(root().join("graphs/llama.json"))[..], SEPARATOR, &config].concat()));
    let template = read(fixture("chat-templates/templates/HuggingFaceTB-SmolLM3-3B.jinja"));
    assert!(readers::chat_template(&[&template[..], SEPARATOR, br#"[{"role": "user", "content": "hi"}]"#].concat()));
    assert!(readers::tokenizer(&(0u32..40).flat_map(u32::to_le_bytes).collect::<Vec<u8>>()));
    let dir = tempfile::tempdir().unwrap();
    assert!(readers::artifact(&read(compile(&tiny, dir.path()))));
    let gguf = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(readers::gguf(&read(gguf)));
}

/// Files that claim more than they hold (2^60 tensors, a 1 TB string, a 1 TB header) are refused
/// before anything that size is allocated: were it allocated, this test would abort.
#[test]
fn claims_of_huge_sizes_are_refused_before_allocating() {
    let gguf = |n_tensors: u64, n_kv: u64, rest: &[u8]| [&b"GGUF\x03\0\0\0"[..], &n_tensors.to_le_bytes(), &n_kv.to_le_bytes(), rest].concat();
    assert!(!readers::gguf(&gguf(1 << 60, 0, &[0; 64])));
    assert!(!readers::gguf(&gguf(0, 1, &(1u64 << 40).to_le_bytes())));
    // one array-of-strings value claiming 2^40 elements
    let key = [&5u64.to_le_bytes()[..], b"a.key", &9u32.to_le_bytes(), &8u32.to_le_bytes(), &(1u64 << 40).to_le_bytes()].concat();
    assert!(!readers::gguf(&gguf(0, 1, &key)));
    let config = std::fs::read(fixture("llama_tied_gqa").join("config.json")).unwrap();
    assert!(!readers::safetensors_folder(&[&config[..], SEPARATOR, &(1u64 << 40).to_le_bytes(), b"{}"].concat()));
    let dir = tempfile::tempdir().unwrap();
    let mut artifact = std::fs::read(compile(&fixture("llama_tied_gqa"), dir.path())).unwrap();
    artifact[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes()); // the metadata's length
    assert!(!readers::artifact(&artifact));
}
