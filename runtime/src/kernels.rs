//! Loads the artifact's native kernels (a shared object) without touching the disk:
//! the bytes go into a memfd that the dynamic loader opens.
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::FromRawFd;

use crate::error::{Error, Result};

/// `fn(args, rows, begin, end)`: args points at the step's buffer pointers.
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, i64, i64, i64);

pub struct Kernels {
    _library: libloading::Library,
    functions: HashMap<String, KernelFn>,
}

impl Kernels {
    pub fn load(code: &[u8], names: &[&str]) -> Result<Kernels> {
        let err = |e: &dyn std::fmt::Display| Error::Kernels(e.to_string());
        // SAFETY: plain syscall with a valid C string.
        let fd = unsafe { libc::memfd_create(c"kiln-kernels".as_ptr(), 0) };
        if fd < 0 {
            return Err(err(&std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.write_all(code).map_err(|e| err(&e))?;
        // SAFETY: the object was produced by the Kiln compiler; its initialisers are LLVM's and benign.
        let library = unsafe { libloading::Library::new(format!("/proc/self/fd/{fd}")) }.map_err(|e| err(&e))?;
        let mut functions = HashMap::new();
        for &name in names {
            // SAFETY: every kernel is emitted with the KernelFn signature.
            let f: libloading::Symbol<KernelFn> = unsafe { library.get(name.as_bytes()) }.map_err(|e| err(&e))?;
            functions.insert(name.to_string(), *f);
        }
        drop(file);
        Ok(Kernels { _library: library, functions })
    }

    pub fn get(&self, name: &str) -> KernelFn {
        self.functions[name]
    }
}
