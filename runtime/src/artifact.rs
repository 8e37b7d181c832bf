//! The artifact file: one header, then metadata (JSON), kernels (a shared object), weights.
//!
//! Layout: header (80 B) | meta JSON | pad | code (.so) | pad to 64 | weights (each tensor 64-aligned).
//! The checksum (CRC-32) covers every byte after the header.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::Plan;

pub const MAGIC: [u8; 8] = *b"KILNART\0";
pub const VERSION: u32 = 7;
pub const ALIGN: u64 = 64;

/// magic[8] | version u32 | header_len u32 | (offset u64, len u64) × meta, code, weights | file_len u64 | crc32 u32 | reserved u32
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Header {
    pub version: u32,
    pub meta: (u64, u64),
    pub code: (u64, u64),
    pub weights: (u64, u64),
    pub file_len: u64,
    pub checksum: u32,
}
pub const HEADER_LEN: usize = 8 + 4 + 4 + 3 * 16 + 8 + 4 + 4;
const _: () = assert!(HEADER_LEN == 80);

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut fields: Vec<u8> = MAGIC.to_vec();
        fields.extend(self.version.to_le_bytes());
        fields.extend((HEADER_LEN as u32).to_le_bytes());
        for (off, len) in [self.meta, self.code, self.weights] {
            fields.extend(off.to_le_bytes());
            fields.extend(len.to_le_bytes());
        }
        fields.extend(self.file_len.to_le_bytes());
        fields.extend(self.checksum.to_le_bytes());
        fields.extend(0u32.to_le_bytes());
        out.copy_from_slice(&fields);
        out
    }

    pub fn decode(bytes: &[u8], path: &str) -> Result<Header> {
        if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
            return Err(Error::NotArtifact { path: path.into() });
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        let version = u32_at(8);
        if version != VERSION {
            return Err(Error::Version { path: path.into(), found: version, expected: VERSION });
        }
        Ok(Header {
            version,
            meta: (u64_at(16), u64_at(24)),
            code: (u64_at(32), u64_at(40)),
            weights: (u64_at(48), u64_at(56)),
            file_len: u64_at(64),
            checksum: u32_at(72),
        })
    }
}

/// A tensor in the weight section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: String,
    /// Where it came from: "f32", "Q4_1", … (before conversion).
    pub source_dtype: String,
    pub offset: u64,
    pub bytes: u64,
}

/// Defaults from the model's generation_config.json, where it has one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GenerationDefaults {
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub architecture: String,
    pub source: String,
    pub dims: BTreeMap<String, usize>,
    /// The model's config.json (bound again by `kiln info` to rebuild the fused graph).
    pub config: serde_json::Value,
    pub plan: Plan,
    pub tensors: Vec<TensorEntry>,
    /// tokenizer.json as text.
    pub tokenizer: String,
    /// Chat templates by name ("default", "tool_use", …).
    pub chat_templates: BTreeMap<String, String>,
    /// bos_token, eos_token, unk_token, pad_token: their text, as templates see them.
    pub special_tokens: BTreeMap<String, String>,
    pub eos_token_ids: Vec<u32>,
    pub add_bos: bool,
    pub generation: GenerationDefaults,
    pub target_cpu: String,
    /// CPU features the kernels were compiled for (LLVM names).
    pub cpu_features: Vec<String>,
    /// What `kiln info` prints about it, worked out by the compiler from the fused graph.
    pub report: crate::info::Report,
}

/// Writes an artifact. `weights` is written by the callback, which must write exactly `weights_len`
/// bytes. The file appears under `path` only when complete (written beside it, then renamed).
pub fn write(
    path: &Path,
    meta: &Meta,
    code: &[u8],
    weights_len: u64,
    write_weights: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let result = write_complete(&partial, meta, code, weights_len, write_weights).and_then(|_| std::fs::rename(&partial, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// The whole artifact into `path` (the caller renames it into place).
fn write_complete(path: &Path, meta: &Meta, code: &[u8], weights_len: u64, write_weights: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    let meta_bytes = serde_json::to_vec(meta)?;
    let meta_off = HEADER_LEN as u64;
    let code_off = align(meta_off + meta_bytes.len() as u64);
    let weights_off = align(code_off + code.len() as u64);
    let file_len = weights_off + weights_len;
    let mut body = Vec::with_capacity((weights_off - meta_off) as usize);
    body.extend(&meta_bytes);
    body.resize((code_off - meta_off) as usize, 0);
    body.extend(code);
    body.resize((weights_off - meta_off) as usize, 0);

    // Stream weights through a hasher into the file; patch the checksum into the header afterwards.
    let file = std::fs::File::create(path)?;
    let mut out = HashingWriter { inner: std::io::BufWriter::with_capacity(1 << 22, file), hasher: crc32fast::Hasher::new(), written: 0 };
    out.inner.write_all(&[0u8; HEADER_LEN])?;
    out.write_all(&body)?;
    write_weights(&mut out)?;
    if out.written != weights_off - meta_off + weights_len {
        return Err(std::io::Error::other("weights written do not match their declared size"));
    }
    let header = Header {
        version: VERSION,
        meta: (meta_off, meta_bytes.len() as u64),
        code: (code_off, code.len() as u64),
        weights: (weights_off, weights_len),
        file_len,
        checksum: out.hasher.clone().finalize(),
    };
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header.encode())?;
    file.sync_all()
}

pub fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An artifact mapped into memory and checked.
pub struct Artifact {
    pub path: String,
    pub header: Header,
    pub meta: Meta,
    pub map: memmap2::Mmap,
}

/// CRC-32 of `bytes`, in pieces on every core, combined (a 500 MB artifact: ~50 ms on one).
fn checksum(bytes: &[u8]) -> u32 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let piece = bytes.len().div_ceil(threads).max(1 << 20);
    let pieces: Vec<crc32fast::Hasher> = std::thread::scope(|s| {
        let jobs: Vec<_> = bytes.chunks(piece).map(|p| s.spawn(move || { let mut h = crc32fast::Hasher::new(); h.update(p); h })).collect();
        jobs.into_iter().map(|j| j.join().expect("a checksum thread panicked")).collect()
    });
    let mut all = crc32fast::Hasher::new();
    pieces.iter().for_each(|h| all.combine(h));
    all.finalize()
}

impl Artifact {
    /// Whether `path` is a file starting with the artifact magic.
    pub fn is_artifact(path: &Path) -> bool {
        let mut magic = [0u8; 8];
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && magic == MAGIC
    }

    /// Maps and verifies an artifact; `check_cpu` refuses one this CPU cannot run.
    pub fn open(path: &Path, check_cpu: bool) -> Result<Artifact> {
        let name = path.display().to_string();
        let io = |err| Error::Io { path: name.clone(), err };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the artifact is read-only for our lifetime; a concurrent writer is outside our contract.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let header = Header::decode(&map, &name)?;
        if (map.len() as u64) != header.file_len {
            return Err(Error::Truncated { path: name, found: map.len() as u64, expected: header.file_len });
        }
        let sections_ok = [header.meta, header.code, header.weights]
            .iter()
            .all(|&(off, len)| off >= HEADER_LEN as u64 && off.checked_add(len).is_some_and(|end| end <= header.file_len));
        if !sections_ok || checksum(&map[HEADER_LEN..]) != header.checksum {
            return Err(Error::Checksum { path: name });
        }
        let (off, len) = header.meta;
        let meta: Meta = serde_json::from_slice(&map[off as usize..(off + len) as usize])
            .map_err(|e| Error::Meta { path: name.clone(), detail: e.to_string() })?;
        if check_cpu {
            let missing = crate::cpu::missing(&meta.cpu_features);
            if !missing.is_empty() {
                return Err(Error::CpuFeatures { path: name, missing: missing.join(", ") });
            }
        }
        Ok(Artifact { path: name, header, meta, map })
    }

    pub fn code(&self) -> &[u8] {
        let (off, len) = self.header.code;
        &self.map[off as usize..(off + len) as usize]
    }

    pub fn weights(&self) -> &[u8] {
        let (off, len) = self.header.weights;
        &self.map[off as usize..(off + len) as usize]
    }
}

#[cfg(test)]
mod tests {
    /// The pieces' CRCs combined are the CRC of the whole, whatever the length.
    #[test]
    fn checksum_in_pieces_is_the_whole_files() {
        let bytes: Vec<u8> = (0..(3 << 20) + 7u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for len in [0, 1, 1 << 20, (2 << 20) + 1, bytes.len()] {
            assert_eq!(super::checksum(&bytes[..len]), crc32fast::hash(&bytes[..len]), "{len} bytes");
        }
    }
}
