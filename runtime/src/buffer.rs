//! A zeroed, 64-byte aligned heap buffer: the activation arena, inputs and KV caches.
use std::alloc::{alloc_zeroed, dealloc, Layout};

pub struct AlignedBuf {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the buffer is plain memory owned by this value.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    pub fn zeroed(bytes: usize) -> AlignedBuf {
        let layout = Layout::from_size_align(bytes.max(64), 64).expect("buffer size");
        // SAFETY: layout has non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory allocating {bytes} bytes");
        AlignedBuf { ptr, layout }
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn bytes(&self) -> usize {
        self.layout.size()
    }

    pub fn as_f32(&self, offset: usize, len: usize) -> &[f32] {
        assert!(offset + len * 4 <= self.layout.size());
        // SAFETY: in bounds (checked), 4-aligned (arena offsets are 64-aligned), initialised (zeroed).
        unsafe { std::slice::from_raw_parts(self.ptr.add(offset) as *const f32, len) }
    }

    pub fn as_i32_mut(&mut self, len: usize) -> &mut [i32] {
        assert!(len * 4 <= self.layout.size());
        // SAFETY: as above, and we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut i32, len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `zeroed`.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}
