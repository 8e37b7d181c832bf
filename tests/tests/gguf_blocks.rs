//! Every GGUF block type Kiln reads dequantises as the `gguf` package does (gguf.quants), on
//! random blocks that exercise every bit field and on real blocks of the Qwen2.5 Q4_K_M file
//! (tests/fixtures/gguf_blocks.json, made by python-trace/gguf_blocks.py).
use compiler::gguf::blocks::{dequantize, type_info};
use compiler::lower::weight_format::WeightFormat;
use kiln_tests::*;
use serde_json::Value;

#[test]
fn every_block_type_dequantises_as_the_gguf_package_does() {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(fixture("gguf_blocks.json")).unwrap()).unwrap();
    let types: serde_json::Map<String, Value> = fixture.as_object().unwrap().clone().into_iter().filter(|(k, _)| k != "quantize").collect();
    assert_eq!(types.len(), 14, "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, the five K-quants; real Q4_K, Q5_0, Q6_K, Q8_0");
    for (name, case) in &types {
        let id = case["type"].as_u64().unwrap() as u32;
        assert_eq!(type_info(id).map(|t| t.0), Some(name.trim_start_matches("real ")));
        let hex = case["bytes"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let want: Vec<f32> = case["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = dequantize(id, &bytes);
        let err = max_rel_err(&got, &want);
        assert!(err < 1e-6, "{name}: differs from gguf.quants by {err}");
    }
}

/// Kernels read Q2_K, Q3_K, Q4_K, Q5_K and Q6_K super-blocks in registers (a gather of each random block as
/// a row) exactly as they dequantise at compile time, on AVX-512 (where present), AVX2 and SSE.
#[test]
fn kernels_read_k_quants_as_they_dequantise() {
    use compiler::lower::kernel::{KernelSet, KernelSpec};
    use compiler::lower::target::TargetCpu;
    use compiler::lower::weight_format::WeightFormat;
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(fixture("gguf_blocks.json")).unwrap()).unwrap();
    let cases = [WeightFormat::Q2_K, WeightFormat::Q3_K, WeightFormat::Q4_K, WeightFormat::Q5_K, WeightFormat::Q6_K]
        .into_iter()
        .flat_map(|f| [(f, f.name().to_string()), (f, format!("real {}", f.name()))])
        .filter(|(_, name)| fixture.get(name).is_some());
    for (format, name) in cases {
        let case = &fixture[&name];
        let hex = case["bytes"].as_str().unwrap();
        let table: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let want = dequantize(case["type"].as_u64().unwrap() as u32, &table);
        let rows = want.len() / 256;
        for target in ["host", "x86-64-v3", "x86-64"] {
            let mut kernels = KernelSet::default();
            let name = kernels.intern(KernelSpec::Gather { width: 256, format });
            let (_, code) = compiler::lower::build(&kernels, &TargetCpu::resolve(target).unwrap()).unwrap();
            let loaded = runtime::kernels::Kernels::load(&code, &[&name]).unwrap();
            let idx: Vec<i32> = (0..rows as i32).rev().collect(); // rows in reverse, to move them
            let mut out = vec![0f32; rows * 256];
            let args = [table.as_ptr() as *mut u8, idx.as_ptr() as *mut u8, out.as_mut_ptr() as *mut u8];
            // SAFETY: a gather kernel reads idx[0..rows] rows of 256 elements from table, writes out.
            unsafe { loaded.get(&name)(args.as_ptr(), rows as i64, 0, rows as i64, std::ptr::null_mut()) };
            let expected: Vec<f32> = idx.iter().flat_map(|&r| want[r as usize * 256..][..256].to_vec()).collect();
            let err = max_rel_err(&out, &expected);
            assert!(err < 1e-6, "{name} on {target}: the kernel's values differ by {err}");
        }
    }
}

/// `kiln compile --quant` makes the bytes the `gguf` package's quantisers (ggml's reference) make.
#[test]
fn quantisers_match_the_gguf_package() {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(fixture("gguf_blocks.json")).unwrap()).unwrap();
    let case = &fixture["quantize"];
    let values: Vec<f32> = case["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    // the gguf package has no Q4_K quantiser: that one is checked against ggml's own below; Q5_0
    // is what Q4_K's rows that are not whole super-blocks take
    for format in compiler::quantize::TARGETS.into_iter().filter(|&f| f != WeightFormat::Q4_K).chain([WeightFormat::Q5_0]) {
        let hex: String = compiler::quantize::quantize(format, &values).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, case[format.name()].as_str().unwrap(), "{}", format.name());
        assert_eq!(hex.len() as u64 / 2, format.tensor_bytes(&[values.len()]));
    }
}

/// `--quant q4_k` makes the blocks ggml's quantize_row_q4_K_ref makes (tests/fixtures/q4_k,
/// make_fixture.sh: 16 super-blocks with outliers, all-positive and all-zero stretches).
#[test]
fn q4_k_quantiser_matches_ggml() {
    let input = std::fs::read(fixture("q4_k/input.f32")).unwrap();
    let values: Vec<f32> = input.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let want = std::fs::read(fixture("q4_k/q4_k.bin")).unwrap();
    let got = compiler::quantize::quantize(WeightFormat::Q4_K, &values);
    for (i, (g, w)) in got.chunks(144).zip(want.chunks(144)).enumerate() {
        assert_eq!(g, w, "super-block {i}");
    }
    assert_eq!(got.len(), want.len());
}
