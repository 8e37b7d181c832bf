//! The compiler pipeline: graph -> bind -> unroll -> fuse -> schedule -> place -> lower -> artifact.
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::path::Path;
use std::time::Instant;

use petgraph::graph::NodeIndex;
use runtime::artifact::{self, Meta, TensorEntry};
use runtime::plan::{Buf, CacheSpec, Input, KvDtype, Plan, Step};

use crate::error::{io, Error, Result};
use crate::fuse;
use crate::lower::{self, kernel::KernelSet, target::TargetCpu};
use crate::memory::{self, Lifetime};
use crate::schedule::{schedule, ArgRef};
use crate::lower::weight_format::WeightFormat;
use crate::source::{ModelSource, TensorInfo};
use crate::storage::{self, WeightMode};
use crate::quantize::quantize;
use crate::rope_table::rope_table;
use crate::unroll::{operands, Dim, Graph, Op, Rotary};

pub struct Options {
    pub target_cpu: String,
    /// Most tokens one forward pass takes (prefill chunk).
    pub max_rows: usize,
    pub weights: WeightMode,
    /// Also write the optimised LLVM IR of the kernels here.
    pub emit_llvm: Option<std::path::PathBuf>,
    /// How the KV cache stores keys and values.
    pub kv: KvDtype,
    /// Quantise float matmul weights and embedding tables to this format (`quantize::TARGETS`).
    pub quant: Option<WeightFormat>,
    /// Keep every matmul's activations in f32 (no 8-bit integer dot products).
    pub exact: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { target_cpu: "host".into(), max_rows: 512, weights: WeightMode::Native, emit_llvm: None, kv: KvDtype::F16, quant: None, exact: false }
    }
}

/// What `compile` did, for the CLI to report.
pub struct Report {
    pub timings: Vec<(&'static str, f64)>,
    pub kernels: usize,
    pub steps: usize,
    pub bytes: u64,
}

/// The graph side of compilation, shared by `compile` and `kiln info`.
pub struct Compiled {
    pub arch: String,
    pub dims: BTreeMap<String, usize>,
    pub graph: Graph,
    pub groups: Vec<fuse::Group>,
    pub logits: NodeIndex,
}

pub fn analyse(config: &serde_json::Value) -> Result<Compiled> {
    let json = crate::graph::for_config(config)?;
    let bound = crate::bind::bind(&json, config)?;
    let unrolled = crate::unroll::unroll(&json, &bound)?;
    let groups = fuse::fuse(&unrolled.graph);
    Ok(Compiled { arch: json.architecture, dims: bound.dims, graph: unrolled.graph, groups, logits: unrolled.logits })
}

/// A tensor of the artifact: a model weight (by source name) or a generated table.
enum Content {
    /// A model weight by source name, written in this format, plus an offset where set.
    Weight(String, WeightFormat, Option<f32>),
    /// Rows [a, b) (all of them: None) of a model weight [n, k] in `format`, repacked (repack.rs).
    Packed { name: String, format: WeightFormat, rows: Option<(usize, usize)>, k: usize },
    Rope(Rotary),
}

/// The artifact's tensors so far, each once by key, and the bytes they take.
#[derive(Default)]
struct Tensors {
    list: Vec<(TensorEntry, Content)>,
    index: HashMap<String, usize>,
    bytes: u64,
}

impl Tensors {
    /// The offset of `key`'s tensor, added with this content if new.
    fn add(&mut self, key: String, shape: Vec<usize>, source_dtype: String, content: Content) -> u64 {
        if let Some(&i) = self.index.get(&key) {
            return self.list[i].0.offset;
        }
        let (dtype, bytes) = match &content {
            Content::Weight(_, f, _) => (f.name(), f.tensor_bytes(&shape)),
            Content::Packed { format, k, .. } => (format!("{}x16", format.name()), crate::repack::packed_bytes(*format, shape[0], *k).expect("packable") as u64),
            Content::Rope(..) => (WeightFormat::F32.name(), WeightFormat::F32.tensor_bytes(&shape)),
        };
        let offset = self.bytes;
        self.bytes = artifact::align(offset + bytes);
        self.index.insert(key.clone(), self.list.len());
        self.list.push((TensorEntry { name: key, shape, dtype, source_dtype, offset, bytes }, content));
        offset
    }
}

/// The buffer of weight node `n` (repacked for the integer kernels with `packed`), its tensor
/// added to `tensors`; an error when the stored tensor is missing or its shape is not the config's.
fn weight_buf(source: &ModelSource, g: &Graph, n: NodeIndex, packed: bool, format: WeightFormat, tensors: &mut Tensors) -> Result<Buf> {
    let Op::Weight { offset: add, .. } = &g[n].op else { unreachable!("a weight node") };
    let infos = source.weights.tensors();
    let name = storage::stored_name(g, n, infos).unwrap_or_default();
    let info: &TensorInfo = infos.get(&name).ok_or_else(|| Error::Model(format!("{}: missing weight '{name}'", source.path)))?;
    let want: Vec<usize> = g[n].shape.iter().map(|d| if let Dim::Fixed(x) = d { *x } else { 0 }).collect();
    // a row range of a fused tensor: the same columns, rows within its own
    let rows = storage::row_range(g, n);
    let fits = match rows {
        Some((_, end)) => info.shape.len() == want.len() && info.shape[1..] == want[1..] && end <= info.shape[0],
        None => info.shape == want,
    };
    if !fits {
        return Err(Error::Model(format!("{}: weight '{name}' has shape {:?}, the config implies {want:?}{}", source.path, info.shape, rows.map_or(String::new(), |(a, b)| format!(" at rows {a}..{b}")))));
    }
    let k = *want.last().unwrap_or(&1);
    if packed {
        let key = crate::repack::packed_name(&name, rows);
        let offset = tensors.add(key, want.clone(), info.dtype.clone(), Content::Packed { name, format, rows, k });
        return Ok(Buf::Weight { offset });
    }
    let add = add.filter(|_| !source.offsets_applied);
    let key = add.map_or(name.clone(), |a| format!("{name}+{a}"));
    let offset = tensors.add(key, info.shape.clone(), info.dtype.clone(), Content::Weight(name, format, add));
    Ok(Buf::Weight { offset: offset + rows.map_or(0, |(r, _)| r as u64 * format.row_bytes(k)) })
}

/// A weight's bytes in `format`: as stored, or quantised from its f32 values.
fn weight_bytes(source: &ModelSource, name: &str, source_dtype: &str, format: WeightFormat) -> Result<Vec<u8>> {
    if source_dtype == format.name() { source.weights.read_raw(name) } else { source.weights.read_f32(name).map(|w| quantize(format, &w)) }
}

/// What `compile` reports as it goes: a new stage, or bytes of weights written so far.
pub enum Progress<'a> {
    Stage(&'a str),
    Weights { done: u64, total: u64 },
}

pub fn compile(source: &ModelSource, out: &Path, options: &Options, progress: &mut dyn FnMut(Progress)) -> Result<Report> {
    let mut timings = vec![];
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, f64)>| {
        timings.push((name, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    progress(Progress::Stage("parsing and fusing the graph"));
    let c = analyse(&source.config)?;
    let g = &c.graph;
    let context = c.dims.get("max_context").copied().unwrap_or(2048);
    let mut kernels = KernelSet::default();
    let infos = source.weights.tensors();
    let formats = storage::formats(g, infos, options.weights, options.quant);
    let format_of = |n: NodeIndex| storage::stored_name(g, n, infos).and_then(|name| formats.get(&name).copied()).unwrap_or(WeightFormat::F32);
    let cpu = TargetCpu::resolve(&options.target_cpu)?;
    let dot = |format: WeightFormat, k: usize| !options.exact && crate::lower::dot::supports(&cpu.features, format, k);
    let steps = schedule(g, &c.groups, &mut kernels, &format_of, options.kv, &dot);
    lap("graph", &mut timings);

    // Tensors: every weight a step reads (tied ones resolved), then the rope tables.
    let mut tensors = Tensors::default();
    let mut caches: Vec<CacheSpec> = vec![];
    let mut lifetimes: Vec<Lifetime> = vec![];
    let mut arena_value: HashMap<NodeIndex, usize> = HashMap::new();
    let mut workspaces: HashMap<u64, usize> = HashMap::new();
    let mut resolved: Vec<Vec<Buf>> = vec![];
    let max_rows = options.max_rows;
    for (si, step) in steps.iter().enumerate() {
        let mut bufs = vec![];
        for arg in &step.args {
            let buf = match arg {
                ArgRef::Input(i) => Buf::Input(*i),
                ArgRef::Workspace(bytes) => {
                    // zeroed once with the arena, and never shared with other values
                    let v = *workspaces.entry(*bytes).or_insert_with(|| {
                        lifetimes.push(Lifetime { bytes: *bytes, first: 0, last: usize::MAX });
                        lifetimes.len() - 1
                    });
                    Buf::Arena { offset: v as u64 }
                }
                ArgRef::RopeTable(r) => {
                    let key = format!("kiln.rope_table.{}.{}.{}.{:?}", r.dim, r.theta, r.scaling, r.original_context);
                    Buf::Weight { offset: tensors.add(key, vec![context, r.dim], "computed".into(), Content::Rope(r.clone())) }
                }
                ArgRef::Packed(n) => weight_buf(source, g, *n, true, format_of(*n), &mut tensors)?,
                ArgRef::Node(n) => {
                    let mut n = *n;
                    while g[n].op == Op::KvWrite {
                        n = operands(g, n)[0];
                    }
                    match &g[n].op {
                        Op::Weight { .. } => weight_buf(source, g, n, false, format_of(n), &mut tensors)?,
                        Op::Input { name } => match name.as_str() {
                            "tokens" => Buf::Input(Input::Tokens),
                            "positions" => Buf::Input(Input::Positions),
                            "logit_rows" => Buf::Input(Input::LogitRows),
                            _ if g[n].shape.first() == Some(&Dim::Context) => {
                                let Dim::Fixed(width) = g[n].shape[1] else { unreachable!("shape-checked") };
                                if options.kv == KvDtype::Q8_0 && !width.is_multiple_of(32) {
                                    return Err(Error::Model(format!("{}: --kv q8_0 needs cache rows of a multiple of 32 values; this model's {name} has {width}", source.path)));
                                }
                                let i = caches.iter().position(|c| c.name == *name).unwrap_or_else(|| {
                                    caches.push(CacheSpec { name: name.clone(), width, dtype: options.kv });
                                    caches.len() - 1
                                });
                                Buf::Cache(i)
                            }
                            other => return Err(Error::Graph { arch: c.arch.clone(), detail: format!("unknown graph input '{other}'") }),
                        },
                        _ => {
                            let v = *arena_value.entry(n).or_insert_with(|| {
                                let Dim::Fixed(width) = g[n].shape[1] else { unreachable!("activations are [rows, width]") };
                                lifetimes.push(Lifetime { bytes: (max_rows * width * 4) as u64, first: si, last: si });
                                lifetimes.len() - 1
                            });
                            lifetimes[v].last = si;
                            Buf::Arena { offset: v as u64 } // value index for now; placed below
                        }
                    }
                }
            };
            bufs.push(buf);
        }
        resolved.push(bufs);
    }
    let logits_value = *arena_value.get(&c.logits).ok_or_else(|| Error::Graph { arch: c.arch.clone(), detail: "logits are never computed".into() })?;
    lifetimes[logits_value].last = usize::MAX;
    let (offsets, arena_bytes) = memory::plan(&lifetimes);
    let place = |b: Buf| match b {
        Buf::Arena { offset } => Buf::Arena { offset: offsets[offset as usize] },
        other => other,
    };
    let plan = Plan {
        max_rows,
        context,
        vocab: c.dims.get("vocab").copied().unwrap_or(0),
        arena_bytes,
        scratch_bytes: lower::plan_scratch(&kernels, &cpu.features, max_rows) as u64,
        caches,
        steps: steps
            .iter()
            .zip(resolved)
            .map(|(s, bufs)| Step { kernel: s.kernel.clone(), args: bufs.into_iter().map(place).collect(), rows: s.rows, work: s.work, label: s.label.clone() })
            .collect(),
        logits: Buf::Arena { offset: offsets[logits_value] },
    };
    lap("plan", &mut timings);

    progress(Progress::Stage("generating native code with LLVM"));
    let (ir, code) = lower::build(&kernels, &cpu)?;
    if let Some(path) = &options.emit_llvm {
        std::fs::write(path, ir).map_err(io(path))?;
    }
    lap("llvm", &mut timings);

    progress(Progress::Stage("writing weights"));
    let tokenizer = tokenizers::Tokenizer::from_str(&source.tokenizer_json).map_err(|e| Error::Model(format!("{}: tokenizer.json: {e}", source.path)))?;
    let mut eos_token_ids = source.eos_token_ids.clone();
    if let Some(id) = source.special_tokens.get("eos_token").and_then(|t| tokenizer.token_to_id(t)) {
        eos_token_ids.push(id);
    }
    eos_token_ids.sort();
    eos_token_ids.dedup();
    let weights_len = tensors.bytes;
    let entries: Vec<_> = tensors.list.iter().map(|(e, _)| e.clone()).collect();
    let report = crate::info::artifact_report(&c, &source.path, &entries, options.kv, format!("{} [{}]", cpu.name, cpu.features.join(",")), &kernels);
    let meta = Meta {
        architecture: c.arch.clone(),
        source: source.path.clone(),
        dims: c.dims.clone(),
        config: source.config.clone(),
        plan,
        tensors: entries,
        tokenizer: source.tokenizer_json.clone(),
        chat_templates: source.chat_templates.clone(),
        special_tokens: source.special_tokens.clone(),
        eos_token_ids,
        add_bos: source.add_bos,
        generation: source.generation.clone(),
        target_cpu: cpu.name.clone(),
        cpu_features: cpu.features.clone(),
        report,
    };
    let mut failure: Option<Error> = None;
    artifact::write(out, &meta, &code, weights_len, |w| {
        let mut written = 0u64;
        // the last fused tensor read for packing, whose other row ranges follow it
        let mut last: Option<(String, std::rc::Rc<Vec<u8>>)> = None;
        for (entry, content) in &tensors.list {
            let f32_bytes = |x: Vec<f32>| x.iter().flat_map(|v| v.to_le_bytes()).collect();
            let data = match content {
                Content::Weight(name, WeightFormat::F32, add) => source.weights.read_f32(name).map(|w| f32_bytes(w.into_iter().map(|x| x + add.unwrap_or(0.0)).collect())),
                Content::Weight(name, format, _) => weight_bytes(source, name, &entry.source_dtype, *format),
                Content::Packed { name, format, rows, k } => {
                    let read = match &last {
                        Some((n, b)) if n == name => Ok(b.clone()),
                        _ => weight_bytes(source, name, &entry.source_dtype, *format).map(std::rc::Rc::new),
                    };
                    read.map(|b| {
                        let row = format.row_bytes(*k) as usize;
                        let (a, z) = rows.unwrap_or((0, b.len() / row));
                        let packed = crate::repack::pack(*format, &b[a * row..z * row], z - a, *k);
                        last = rows.map(|_| (name.clone(), b));
                        packed
                    })
                }
                Content::Rope(r) => rope_table(r, context).map(f32_bytes),
            };
            let data: Vec<u8> = match data {
                Ok(d) => d,
                Err(e) => {
                    failure = Some(e);
                    return Err(std::io::Error::other("weight conversion failed"));
                }
            };
            if data.len() as u64 != entry.bytes {
                failure = Some(Error::Model(format!("{}: tensor '{}' has {} bytes, {} expected for {:?} {}", source.path, entry.name, data.len(), entry.bytes, entry.shape, entry.dtype)));
                return Err(std::io::Error::other("weight size mismatch"));
            }
            w.write_all(&vec![0u8; (entry.offset - written) as usize])?;
            w.write_all(&data)?;
            written = entry.offset + data.len() as u64;
            progress(Progress::Weights { done: written, total: weights_len });
        }
        w.write_all(&vec![0u8; (weights_len - written) as usize])
    })
    .map_err(|e| failure.take().unwrap_or_else(|| io(out)(e)))?;
    lap("weights", &mut timings);
    Ok(Report { timings, kernels: kernels.specs.len(), steps: steps.len(), bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0) })
}
