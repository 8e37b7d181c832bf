//! The execution plan: what the compiler decided and the runtime replays.
//! Every step calls one native kernel `fn(args, rows, begin, end, scratch)` on a work range.
use serde::{Deserialize, Serialize};

/// Where a kernel argument lives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Buf {
    /// A tensor in the artifact's weight section: byte offset from its start.
    Weight { offset: u64 },
    /// An input the runtime fills each pass: [rows] i32.
    Input(Input),
    /// One KV-cache tensor, by index into `Plan::caches`: [slots · context, width] in its dtype.
    Cache(usize),
    /// A slice of the activation arena: byte offset (64-aligned).
    Arena { offset: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    Tokens,
    /// Each row's position in its own sequence (rope, the causal mask).
    Positions,
    LogitRows,
    /// Each row's sequence: the cache row of its position 0 (its slot × the context). A pass may
    /// hold rows of several sequences; kv_write and attention add this to the position.
    CacheBase,
}

/// How many rows a step sees: the pass's tokens, or its logit rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rows {
    Tokens,
    Logits,
}

/// The range a step's work is split over between threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// 0..rows
    Rows,
    /// 0..n output columns
    Columns(usize),
    /// One KV head (with its query heads) of each row: below TILE_ROWS rows, n · rows · PARTS items,
    /// each a part of a row's cache rows; from TILE_ROWS rows on, n · rows items: in tiles of
    /// TILE_ROWS rows (the last one padded), each tile's items together, where the kernel is
    /// given scratch for its tile paths, else one by one (each row's parts in turn).
    HeadRows(usize),
}

/// Rows of an attention tile (`Work::HeadRows`).
pub const TILE_ROWS: usize = 16;
/// Parts a row's cache rows are cut into for attention (`Work::HeadRows`).
pub const PARTS: usize = 4;

impl Work {
    /// The items of this work for a pass of `rows` rows, and the grain pieces are cut at; `scratch`:
    /// whether the kernel is given scratch (attention's tiles).
    pub fn range(self, rows: usize, scratch: bool) -> (usize, usize) {
        match self {
            Work::Rows => (rows, 1),
            Work::Columns(n) => (n, 16),
            Work::HeadRows(h) if rows >= TILE_ROWS && scratch => (h * rows.next_multiple_of(TILE_ROWS), TILE_ROWS),
            Work::HeadRows(h) if rows >= TILE_ROWS => (h * rows, 1),
            Work::HeadRows(h) => (h * rows * PARTS, 1),
        }
    }

    /// Pieces per thread the range is cut into: two, so that a thread that finishes early takes
    /// another's — but one for matmuls of MANY_ROWS rows and more, whose every piece repeats the
    /// rows' prologue (norm, quantisation or bf16 rounding) for its columns.
    pub fn pieces_per_thread(self, rows: usize) -> usize {
        match self {
            Work::Columns(_) if rows >= MANY_ROWS => 1,
            _ => 2,
        }
    }
}

/// Rows from which a matmul's pass is cut into one piece per thread (`Work::pieces_per_thread`).
pub const MANY_ROWS: usize = 8;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub kernel: String,
    pub args: Vec<Buf>,
    pub rows: Rows,
    pub work: Work,
    /// What this step computes, for people: "layer 3: q_proj ← rms_norm·g".
    pub label: String,
}

/// How the KV cache stores its values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvDtype {
    #[default]
    F32,
    /// IEEE half, rounded to nearest even: half the bytes to read per attended position.
    F16,
    /// GGUF's Q8_0 blocks along each row (f16 d | i8 q[32], x = d·q): 34 bytes per 32 values.
    #[serde(rename = "q8_0")]
    Q8_0,
}

impl KvDtype {
    /// Bytes of a cache row of `width` values (a multiple of 32 for Q8_0).
    pub fn row_bytes(self, width: usize) -> usize {
        match self {
            KvDtype::F32 => 4 * width,
            KvDtype::F16 => 2 * width,
            KvDtype::Q8_0 => width / 32 * 34,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CacheSpec {
    pub name: String,
    pub width: usize,
    #[serde(default)]
    pub dtype: KvDtype,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Most tokens one pass may take; longer prompts are prefilled in chunks of this.
    pub max_rows: usize,
    /// KV-cache rows: the longest sequence this artifact runs.
    pub context: usize,
    pub vocab: usize,
    pub arena_bytes: u64,
    /// Scratch each thread hands the kernels for their tile paths (AMX matmuls and attention,
    /// attention on vector registers); 0: none. Kernels built for AMX get it only where it is
    /// granted (cpu::amx_granted).
    pub scratch_bytes: u64,
    pub caches: Vec<CacheSpec>,
    pub steps: Vec<Step>,
    /// The logits: [rows of LogitRows, vocab] f32.
    pub logits: Buf,
}
