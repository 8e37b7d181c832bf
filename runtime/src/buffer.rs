//! A zeroed, page-aligned buffer of anonymous memory: the activation arena, inputs, KV caches and
//! kernel scratch. The kernel hands out zero pages on first touch, so a KV cache sized for the
//! whole context (or an arena sized for the largest pass) costs memory only as far as it is used.
use memmap2::MmapMut;

pub struct AlignedBuf {
    ptr: *mut u8,
    map: MmapMut,
}

// SAFETY: the buffer is plain memory owned by this value.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    pub fn zeroed(bytes: usize) -> AlignedBuf {
        let mut map = MmapMut::map_anon(bytes.max(64)).unwrap_or_else(|e| panic!("cannot reserve {bytes} bytes of memory: {e}"));
        AlignedBuf { ptr: map.as_mut_ptr(), map }
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn bytes(&self) -> usize {
        self.map.len()
    }

    pub fn as_f32(&self, offset: usize, len: usize) -> &[f32] {
        assert!(offset + len * 4 <= self.bytes());
        // SAFETY: in bounds (checked), 4-aligned (arena offsets are 64-aligned), initialised (zeroed).
        unsafe { std::slice::from_raw_parts(self.ptr.add(offset) as *const f32, len) }
    }

    pub fn as_i32_mut(&mut self, len: usize) -> &mut [i32] {
        assert!(len * 4 <= self.bytes());
        // SAFETY: as above, and we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut i32, len) }
    }
}
