//! The KV cache: one pre-allocated [slots · context, width] buffer (f32 or f16) per cache input of
//! the graph (two per layer), allocated once at load. Slot s holds one sequence in rows
//! s·context .. (s+1)·context; pages are touched only as sequences reach them.
use crate::buffer::AlignedBuf;
use crate::plan::CacheSpec;

pub struct KvCache {
    buffers: Vec<AlignedBuf>,
    /// Positions per slot.
    pub context: usize,
    pub slots: usize,
}

impl KvCache {
    pub fn new(specs: &[CacheSpec], context: usize, slots: usize) -> KvCache {
        KvCache { buffers: specs.iter().map(|s| AlignedBuf::zeroed(slots * context * s.dtype.row_bytes(s.width))).collect(), context, slots }
    }

    pub fn ptr(&self, i: usize) -> *mut u8 {
        self.buffers[i].ptr()
    }

    /// Bytes per position of one sequence, over every layer.
    pub fn bytes_per_token(specs: &[CacheSpec]) -> usize {
        specs.iter().map(|s| s.dtype.row_bytes(s.width)).sum()
    }
}
