//! The GGUF container: header, metadata key/values, tensor infos, aligned data.
//! Layout: "GGUF" | u32 version | u64 n_tensors | u64 n_kv | kv… | tensor info… | pad | data
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{io, Error, Result};

pub struct TensorRecord {
    pub name: String,
    /// ggml order: dims[0] is the innermost (contiguous) one
    pub dims: Vec<usize>,
    pub type_id: u32,
    /// absolute byte range in the file
    pub start: usize,
    pub end: usize,
}

pub struct GgufFile {
    pub path: String,
    pub map: memmap2::Mmap,
    pub meta: BTreeMap<String, Value>,
    pub tensors: Vec<TensorRecord>,
}

/// Arrays nest (an array of arrays) at most this deep; real files use one level.
const MAX_ARRAY_DEPTH: usize = 4;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| Error::Format {
            path: self.path.into(),
            detail: format!("truncated GGUF file (needs {n} bytes at offset {}, file has {})", self.pos, self.b.len()),
        })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u64()? as usize;
        Ok(String::from_utf8_lossy(self.bytes(n)?).into_owned())
    }
    fn value(&mut self, ty: u32, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => json!(self.bytes(1)?[0]),
            1 => json!(self.bytes(1)?[0] as i8),
            2 => json!(u16::from_le_bytes(self.bytes(2)?.try_into().unwrap())),
            3 => json!(i16::from_le_bytes(self.bytes(2)?.try_into().unwrap())),
            4 => json!(self.u32()?),
            5 => json!(self.u32()? as i32),
            6 => json!(f32::from_le_bytes(self.bytes(4)?.try_into().unwrap())),
            7 => json!(self.bytes(1)?[0] != 0),
            8 => json!(self.string()?),
            9 => {
                let (inner, n) = (self.u32()?, self.u64()? as usize);
                if n > self.b.len() || depth >= MAX_ARRAY_DEPTH {
                    return Err(Error::Format { path: self.path.into(), detail: format!("corrupt GGUF array (length {n}, nested {} deep)", depth + 1) });
                }
                Value::Array((0..n).map(|_| self.value(inner, depth + 1)).collect::<Result<_>>()?)
            }
            10 => json!(self.u64()?),
            11 => json!(self.u64()? as i64),
            12 => json!(f64::from_le_bytes(self.bytes(8)?.try_into().unwrap())),
            other => return Err(Error::Format { path: self.path.into(), detail: format!("unknown GGUF metadata type {other}") }),
        })
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<GgufFile> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(io(path))?;
        // SAFETY: read-only map of a file we do not modify.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(path))?;
        let bad = |detail: String| Error::Format { path: name.clone(), detail };
        if map.len() < 4 || &map[..4] != b"GGUF" {
            return Err(bad("not a GGUF file (bad magic)".into()));
        }
        let mut r = Reader { b: &map, pos: 4, path: &name };
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(bad(format!("unsupported GGUF version {version}")));
        }
        let (n_tensors, n_kv) = (r.u64()? as usize, r.u64()? as usize);
        let mut meta = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string()?;
            let ty = r.u32()?;
            meta.insert(key, r.value(ty, 0)?);
        }
        let mut infos = vec![];
        for _ in 0..n_tensors {
            let tname = r.string()?;
            let n_dims = r.u32()? as usize;
            if n_dims > 4 {
                return Err(bad(format!("tensor '{tname}' has {n_dims} dimensions")));
            }
            let dims = (0..n_dims).map(|_| r.u64().map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
            let (type_id, offset) = (r.u32()?, r.u64()? as usize);
            infos.push((tname, dims, type_id, offset));
        }
        let alignment = meta.get("general.alignment").and_then(Value::as_u64).unwrap_or(32) as usize;
        if !alignment.is_power_of_two() {
            return Err(bad(format!("general.alignment {alignment} is not a power of two")));
        }
        let data = r.pos.next_multiple_of(alignment);
        let mut tensors = vec![];
        for (tname, dims, type_id, offset) in infos {
            let (tyname, per_block, block_bytes) = super::blocks::type_info(type_id)
                .ok_or_else(|| bad(format!("tensor '{tname}' has quantisation type {type_id}, which Kiln cannot read yet")))?;
            let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if count.is_none_or(|c| c % per_block != 0) {
                return Err(bad(format!("tensor '{tname}' ({tyname}) of shape {dims:?} is not whole blocks")));
            }
            let bytes = (count.unwrap() / per_block).saturating_mul(block_bytes);
            let (start, end) = (data.saturating_add(offset), data.saturating_add(offset).saturating_add(bytes));
            if end > map.len() {
                return Err(bad(format!("truncated GGUF file: tensor '{tname}' ends at byte {end}, file has {}", map.len())));
            }
            tensors.push(TensorRecord { name: tname, dims, type_id, start, end });
        }
        Ok(GgufFile { path: name, map, meta, tensors })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta.get(key)
    }
}
