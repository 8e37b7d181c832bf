//! The target CPU: which features the kernels may use, and turning the module into a
//! shared object (LLVM object code, linked by the system C compiler driver).
use std::path::Path;
use std::process::Command;

use inkwell::module::Module;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine};
use inkwell::OptimizationLevel;

use crate::error::{Error, Result};

/// Feature levels `--target-cpu` accepts besides `host` (the x86-64 psABI levels).
const LEVELS: &[(&str, &[&str])] = &[
    ("x86-64", &[]),
    ("x86-64-v2", &["sse4.2"]),
    ("x86-64-v3", &["sse4.2", "avx", "avx2", "fma", "f16c", "bmi2"]),
    ("x86-64-v4", &["sse4.2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]),
];

pub struct TargetCpu {
    /// What the user asked for: "host" or a level.
    pub name: String,
    /// LLVM's name of the CPU to tune for.
    pub tune: String,
    /// The features kernels may use (LLVM names, each one the runtime can detect).
    pub features: Vec<String>,
}

impl TargetCpu {
    pub fn resolve(name: &str) -> Result<TargetCpu> {
        Target::initialize_native(&InitializationConfig::default()).map_err(Error::Llvm)?;
        if name == "host" {
            let host = TargetMachine::get_host_cpu_features().to_string();
            let features = runtime::cpu::known_features()
                .into_iter()
                .filter(|(f, present)| *present && host.split(',').any(|h| h == format!("+{f}")))
                .map(|(f, _)| f.to_string())
                .collect();
            return Ok(TargetCpu { name: name.into(), tune: TargetMachine::get_host_cpu_name().to_string(), features });
        }
        let (_, features) = LEVELS.iter().find(|(l, _)| *l == name).ok_or_else(|| {
            Error::Model(format!("unknown --target-cpu '{name}' (use host, {})", LEVELS.iter().map(|l| l.0).collect::<Vec<_>>().join(", ")))
        })?;
        Ok(TargetCpu { name: name.into(), tune: "generic".into(), features: features.iter().map(|f| f.to_string()).collect() })
    }

    pub fn feature_string(&self) -> String {
        self.features.iter().map(|f| format!("+{f}")).collect::<Vec<_>>().join(",")
    }

    /// f32 lanes of the widest vector the features allow.
    pub fn lanes(&self) -> u32 {
        let has = |f: &str| self.features.iter().any(|x| x == f);
        if has("avx512f") {
            16
        } else if has("avx") {
            8
        } else {
            4
        }
    }

    /// Attributes every kernel function carries.
    pub fn function_attributes(&self) -> Vec<(String, String)> {
        let mut attrs = vec![
            ("target-cpu".to_string(), "x86-64".to_string()),
            ("tune-cpu".to_string(), self.tune.clone()),
            ("target-features".to_string(), self.feature_string()),
        ];
        if self.lanes() == 16 {
            attrs.push(("prefer-vector-width".into(), "512".into()));
            attrs.push(("min-legal-vector-width".into(), "512".into()));
        }
        attrs
    }

    fn machine(&self) -> Result<TargetMachine> {
        without_machine_scheduler();
        let triple = TargetMachine::get_default_triple();
        let target = Target::from_triple(&triple).map_err(|e| Error::Llvm(e.to_string()))?;
        target
            .create_target_machine(&triple, "x86-64", &self.feature_string(), OptimizationLevel::Aggressive, RelocMode::PIC, CodeModel::Default)
            .ok_or_else(|| Error::Llvm("cannot create a target machine".into()))
    }

    /// Verifies and optimises the module at O3 and writes it as an object file; returns the textual IR.
    pub fn object(&self, module: &Module, obj: &Path) -> Result<String> {
        module.verify().map_err(|e| Error::Llvm(e.to_string()))?;
        let tm = self.machine()?;
        module.set_triple(&tm.get_triple());
        module.set_data_layout(&tm.get_target_data().get_data_layout());
        module.run_passes("default<O3>", &tm, PassBuilderOptions::create()).map_err(|e| Error::Llvm(e.to_string()))?;
        // the IR as optimised, before code generation's own passes rewrite it
        let ir = module.print_to_string().to_string();
        tm.write_to_file(module, FileType::Object, obj).map_err(|e| Error::Llvm(e.to_string()))?;
        Ok(ir)
    }

    /// Links object files into one shared object (by the system C compiler driver); returns its bytes.
    pub fn link(objects: &[std::path::PathBuf], work: &Path) -> Result<Vec<u8>> {
        let so = work.join("kernels.so");
        let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-shared", "-nostdlib", "-o"])
            .arg(&so)
            .args(objects)
            .status()
            .map_err(|e| Error::Llvm(format!("cannot run the linker `cc` (install gcc or clang): {e}")))?;
        if !status.success() {
            return Err(Error::Llvm(format!("linking the kernels failed ({status})")));
        }
        std::fs::read(&so).map_err(crate::error::io(&so))
    }
}

/// Turns LLVM's machine scheduler off, once per process, before any code is generated. With
/// AVX2's 16 registers it hoists the weights of every step of an int8 tile above the rows' sums
/// and spills them (a Zen 3 machine, 512-token prefill: Q4_0 1.21×, Q4_1 1.14×, Qwen2.5 Q4_K_M
/// 1.13×; decode the same); on AVX-512 targets llvm-mca finds the hot loops within 3% either way.
fn without_machine_scheduler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let args = [c"kiln", c"-enable-misched=false"];
        let argv: Vec<_> = args.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: argv holds NUL-terminated strings that outlive the call; LLVM keeps no pointer to them
        unsafe { llvm_sys::support::LLVMParseCommandLineOptions(argv.len() as i32, argv.as_ptr(), std::ptr::null()) };
    });
}
