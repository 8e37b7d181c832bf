//! `kiln info`'s text for the tiny fixture model, pinned whole (bandwidth fixed at 20 GB/s so the
//! roofline line does not depend on the machine).
use std::path::Path;

#[test]
fn info_text_of_a_model_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let model = root.join("tests/fixtures/llama_tied_gqa");
    let (report, _) = compiler::info::load(&model).unwrap();
    let text = report.text(Some(20e9)).replace(&root.display().to_string(), "<repo>");
    insta::assert_snapshot!("tiny_model_info", text);
}

#[test]
fn info_text_of_an_artifact() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.kiln");
    let source = compiler::load_model(&root.join("tests/fixtures/llama_tied_gqa")).unwrap();
    let options = compiler::compile::Options { target_cpu: "x86-64-v3".into(), ..Default::default() };
    compiler::compile::compile(&source, &out, &options, &mut |_| {}).unwrap();
    let (report, _) = compiler::info::load(&out).unwrap();
    let text = report.text(Some(20e9)).replace(&root.display().to_string(), "<repo>");
    insta::assert_snapshot!("tiny_artifact_info", text);
}

/// An MLX folder of mixed precision: each tensor group's packed format (bits, group, scale type).
#[test]
fn info_text_of_a_mixed_mlx_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let model = root.join("tests/fixtures/mlx/llama_untied_llama3_rope_mixed_3_6");
    let (report, _) = compiler::info::load(&model).unwrap();
    let text = report.text(Some(20e9)).replace(&root.display().to_string(), "<repo>");
    insta::assert_snapshot!("mixed_mlx_folder_info", text);
}
