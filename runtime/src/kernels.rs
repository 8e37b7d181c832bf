//! Loads the artifact's native kernels (a shared object) without touching the disk:
//! the bytes go into a memfd that the dynamic loader opens as `/proc/self/fd/N`.
//!
//! The loader knows a library by the path it was opened with: a second dlopen of the same path
//! hands back the library already loaded. So the memfd stays open for as long as its library is
//! loaded, and no other artifact's memfd can get the same number meanwhile; if the loader keeps a
//! library after dlclose, its descriptor is kept too, and the path stays reserved.
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};

use crate::error::{Error, Result};

/// `fn(args, rows, begin, end, scratch)`: args points at the step's buffer pointers; scratch at
/// this thread's `Plan::scratch_bytes`, or is null where AMX tiles may not be used (the only
/// kernels that need scratch are the AMX matmuls, which then take their other path).
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, i64, i64, i64, *mut u8);

pub struct Kernels {
    library: Option<libloading::Library>,
    memfd: Option<File>,
    path: String,
    functions: HashMap<String, KernelFn>,
}

impl Kernels {
    pub fn load(code: &[u8], names: &[&str]) -> Result<Kernels> {
        let err = |e: &dyn std::fmt::Display| Error::Kernels(e.to_string());
        // SAFETY: plain syscall with a valid C string.
        let fd = unsafe { libc::memfd_create(c"kiln-kernels".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(err(&std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let mut memfd = unsafe { File::from_raw_fd(fd) };
        memfd.write_all(code).map_err(|e| err(&e))?;
        let path_of = |f: &File| format!("/proc/self/fd/{}", f.as_raw_fd());
        // A library something else in the process loaded from a descriptor it has since closed
        // holds this path: take other numbers (keeping the taken ones) until one is free.
        let mut taken = vec![];
        while is_loaded(&path_of(&memfd)) {
            let other = memfd.try_clone().map_err(|e| err(&e))?;
            taken.push(std::mem::replace(&mut memfd, other));
        }
        drop(taken);
        let path = path_of(&memfd);
        // SAFETY: the object was produced by the Kiln compiler; its initialisers are LLVM's and benign.
        let library = unsafe { libloading::Library::new(&path) }.map_err(|e| err(&e))?;
        let mut functions = HashMap::new();
        for &name in names {
            // SAFETY: every kernel is emitted with the KernelFn signature.
            let f: libloading::Symbol<KernelFn> = unsafe { library.get(name.as_bytes()) }.map_err(|e| err(&e))?;
            functions.insert(name.to_string(), *f);
        }
        Ok(Kernels { library: Some(library), memfd: Some(memfd), path, functions })
    }

    pub fn get(&self, name: &str) -> KernelFn {
        self.functions[name]
    }
}

impl Drop for Kernels {
    fn drop(&mut self) {
        drop(self.library.take());
        if is_loaded(&self.path) {
            std::mem::forget(self.memfd.take()); // keep the path reserved for the lingering library
        }
    }
}

/// Whether the dynamic loader has a library loaded under `path`.
fn is_loaded(path: &str) -> bool {
    // SAFETY: RTLD_NOLOAD never loads (so runs no initialiser); a handle it returns is closed at once.
    unsafe { libloading::os::unix::Library::open(Some(path), libc::RTLD_NOLOAD | libc::RTLD_LAZY) }.is_ok()
}
