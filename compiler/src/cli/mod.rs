//! The commands only the compiler's `kiln` has; the rest live in runtime::cli.
pub mod compile;
pub mod convert;
pub mod info;
