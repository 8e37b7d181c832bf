//! `kiln convert`: a model Kiln reads (Hugging Face folder, GGUF file, MLX folder) written as a
//! GGUF file (to_gguf.rs) or an MLX folder (to_mlx.rs), re-quantised where asked.
pub mod to_gguf;
pub mod to_mlx;

use serde_json::Value;

use crate::error::Result;
use crate::lower::weight_format::WeightFormat;
use crate::quantize::quantize;
use crate::source::{ModelSource, TensorInfo};

/// `config[a][b]…` for the dotted key `a.b…`.
pub fn config_path<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(config, |node, part| node.get(part))
}

/// The format a matrix is written in: `quant` where its rows are whole blocks of it, else its
/// stored format where `keep` accepts it, else f16 (llama.cpp's and mlx_lm's float default).
pub fn tensor_format(info: &TensorInfo, quant: Option<WeightFormat>, keep: impl Fn(WeightFormat) -> bool) -> WeightFormat {
    let k = info.shape.last().copied().unwrap_or(0);
    let stored = WeightFormat::from_name(&info.dtype).filter(|f| keep(*f));
    quant.and_then(|q| crate::quantize::target_for(q, k)).or(stored).unwrap_or(WeightFormat::F16)
}

/// Tensor `name`'s bytes in `format`, `add` added to each value (Gemma's norm offsets): its stored
/// bytes where they are already that, else its values re-quantised.
pub fn tensor_bytes(source: &ModelSource, name: &str, format: WeightFormat, add: f32) -> Result<Vec<u8>> {
    if add == 0.0 && format.name() == source.weights.tensors()[name].dtype {
        return source.weights.read_raw(name);
    }
    let x: Vec<f32> = source.weights.read_f32(name)?.into_iter().map(|v| v + add).collect();
    Ok(quantize(format, &x))
}
