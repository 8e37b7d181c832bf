//! Every GGUF block type Kiln reads dequantises as the `gguf` package does (gguf.quants), on
//! random blocks that exercise every bit field (tests/fixtures/gguf_blocks.json, made by
//! python-trace/gguf_blocks.py).
use compiler::gguf::blocks::{dequantize, type_info};
use kiln_tests::*;
use serde_json::Value;

#[test]
fn every_block_type_dequantises_as_the_gguf_package_does() {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(fixture("gguf_blocks.json")).unwrap()).unwrap();
    let types = fixture.as_object().unwrap();
    assert_eq!(types.len(), 10, "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the five K-quants");
    for (name, case) in types {
        let id = case["type"].as_u64().unwrap() as u32;
        assert_eq!(type_info(id).map(|t| t.0), Some(name.as_str()));
        let hex = case["bytes"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let want: Vec<f32> = case["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = dequantize(id, &bytes);
        let err = max_rel_err(&got, &want);
        assert!(err < 1e-6, "{name}: differs from gguf.quants by {err}");
    }
}
