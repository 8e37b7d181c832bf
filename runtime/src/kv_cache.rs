//! The KV cache: one pre-allocated [context, width] buffer (f32 or f16) per cache input of the
//! graph (two per layer), allocated once at load.
use crate::buffer::AlignedBuf;
use crate::plan::CacheSpec;

pub struct KvCache {
    buffers: Vec<AlignedBuf>,
    pub context: usize,
}

impl KvCache {
    pub fn new(specs: &[CacheSpec], context: usize) -> KvCache {
        KvCache { buffers: specs.iter().map(|s| AlignedBuf::zeroed(context * s.width * s.dtype.bytes())).collect(), context }
    }

    pub fn ptr(&self, i: usize) -> *mut u8 {
        self.buffers[i].ptr()
    }
}
