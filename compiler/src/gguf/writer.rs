//! Writing the GGUF container (version 3), as file.rs reads it:
//! "GGUF" | u32 version | u64 n_tensors | u64 n_kv | kv… | tensor info… | pad to 32 | data (each tensor at a multiple of 32)
//! kv: u64 len | key | u32 type | value;  tensor info: u64 len | name | u32 n_dims | u64 dims[n] (innermost first) | u32 type | u64 offset
use std::io::Write;
use std::path::Path;

use crate::error::{io, Result};

pub const ALIGNMENT: u64 = 32;
/// "GGUF" | u32 version | u64 n_tensors | u64 n_kv
const HEADER_BYTES: usize = 4 + 4 + 8 + 8;
const _: () = assert!(HEADER_BYTES == 24);

/// A metadata value, in the GGUF types llama.cpp's converter uses for each key.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    F32s(Vec<f32>),
    Bools(Vec<bool>),
}

impl MetaValue {
    /// (GGUF type id, element type id for arrays)
    fn type_ids(&self) -> (u32, Option<u32>) {
        match self {
            MetaValue::U32(_) => (4, None),
            MetaValue::F32(_) => (6, None),
            MetaValue::Bool(_) => (7, None),
            MetaValue::Str(_) => (8, None),
            MetaValue::Strs(_) => (9, Some(8)),
            MetaValue::I32s(_) => (9, Some(5)),
            MetaValue::F32s(_) => (9, Some(6)),
            MetaValue::Bools(_) => (9, Some(7)),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let string = |s: &str, out: &mut Vec<u8>| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        let (ty, elem) = self.type_ids();
        out.extend(ty.to_le_bytes());
        if let Some(elem) = elem {
            out.extend(elem.to_le_bytes());
        }
        match self {
            MetaValue::U32(v) => out.extend(v.to_le_bytes()),
            MetaValue::F32(v) => out.extend(v.to_le_bytes()),
            MetaValue::Bool(v) => out.push(*v as u8),
            MetaValue::Str(s) => string(s, out),
            MetaValue::Strs(v) => {
                out.extend((v.len() as u64).to_le_bytes());
                v.iter().for_each(|s| string(s, out));
            }
            MetaValue::I32s(v) => {
                out.extend((v.len() as u64).to_le_bytes());
                v.iter().for_each(|x| out.extend(x.to_le_bytes()));
            }
            MetaValue::F32s(v) => {
                out.extend((v.len() as u64).to_le_bytes());
                v.iter().for_each(|x| out.extend(x.to_le_bytes()));
            }
            MetaValue::Bools(v) => {
                out.extend((v.len() as u64).to_le_bytes());
                out.extend(v.iter().map(|&b| b as u8));
            }
        }
    }
}

/// A tensor to write: its name, shape (row-major, outermost first), ggml type and byte size.
pub struct TensorPlan {
    pub name: String,
    pub shape: Vec<usize>,
    pub type_id: u32,
    pub bytes: u64,
}

/// Writes `meta` and the tensors, asking `data(i)` for tensor i's bytes one at a time.
pub fn write(path: &Path, meta: &[(String, MetaValue)], tensors: &[TensorPlan], data: &mut dyn FnMut(usize) -> Result<Vec<u8>>) -> Result<()> {
    let mut head = b"GGUF".to_vec();
    head.extend(3u32.to_le_bytes());
    head.extend((tensors.len() as u64).to_le_bytes());
    head.extend((meta.len() as u64).to_le_bytes());
    assert_eq!(head.len(), HEADER_BYTES);
    for (key, value) in meta {
        head.extend((key.len() as u64).to_le_bytes());
        head.extend(key.as_bytes());
        value.encode(&mut head);
    }
    let mut offset = 0u64;
    for t in tensors {
        head.extend((t.name.len() as u64).to_le_bytes());
        head.extend(t.name.as_bytes());
        head.extend((t.shape.len() as u32).to_le_bytes());
        t.shape.iter().rev().for_each(|&d| head.extend((d as u64).to_le_bytes()));
        head.extend(t.type_id.to_le_bytes());
        head.extend(offset.to_le_bytes());
        offset = (offset + t.bytes).next_multiple_of(ALIGNMENT);
    }
    head.resize((head.len() as u64).next_multiple_of(ALIGNMENT) as usize, 0);
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all(&head).map_err(io(path))?;
    for (i, t) in tensors.iter().enumerate() {
        let bytes = data(i)?;
        assert_eq!(bytes.len() as u64, t.bytes, "tensor {} has the bytes its plan says", t.name);
        out.write_all(&bytes).map_err(io(path))?;
        let pad = t.bytes.next_multiple_of(ALIGNMENT) - t.bytes;
        out.write_all(&vec![0u8; pad as usize]).map_err(io(path))?;
    }
    out.flush().map_err(io(path))
}
