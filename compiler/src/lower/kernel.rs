//! Kernel specifications: what each native function computes, independent of where its
//! arguments live. Identical specs (every layer's q_proj, say) share one function.
/// A fused expression whose leaves are argument slots of the kernel.
pub type KExpr = crate::fuse::Expr<usize>;

use runtime::plan::KvDtype;

use super::weight_format::WeightFormat;

/// Each kernel is `void name(void **args, i64 rows, i64 begin, i64 end)`.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelSpec {
    /// args: `inputs` leaves, then out [rows, width].  Work: rows.
    Map { width: usize, inputs: usize, expr: KExpr },
    /// args: weight [n, k] in `format`, `inputs` leaves (slots 1..), then out [rows, n].  Work: columns n.
    /// `dot`: the weight packed 16 columns at a time (repack.rs) and met by dot-product
    /// instructions — 8-bit integer activations, or bf16 ones for bf16 weights (lower/dot.rs).
    Matmul { k: usize, n: usize, inputs: usize, input: KExpr, epilogue: KExpr, format: WeightFormat, dot: bool },
    /// args: table [_, width] in `format`, idx [rows] i32, out [rows, width].  Work: rows.
    Gather { width: usize, format: WeightFormat },
    /// args: x [rows, width], pos [rows] i32, table [context, rotary_dim] (cos | sin), out.  Work: rows.
    Rope { width: usize, head_dim: usize, rotary_dim: usize },
    /// args: x [rows, width], gain [head_dim], out [rows, width].  Work: rows.
    HeadRmsNorm { width: usize, head_dim: usize, eps: f32 },
    /// args: cache [slots · context, width] in `dtype`, x [rows, width], pos [rows] i32, base [rows] i32.  Work: rows.
    KvWrite { width: usize, dtype: KvDtype },
    /// args: q [rows, heads·hd], k_cache, v_cache [slots · context, kv_heads·hd], pos [rows] i32, base [rows] i32, out,
    /// workspace (`attention::workspace_bytes`).  Work: kv heads × rows (× PARTS below TILE_ROWS rows).
    Attention(AttentionSpec),
}

/// Causal grouped-query attention over a cache in `kv` (see `lower/attention.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionSpec {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub window: Option<usize>,
    pub softcap: Option<f32>,
    pub kv: KvDtype,
}

impl KernelSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            KernelSpec::Map { .. } => "map",
            KernelSpec::Matmul { .. } => "matmul",
            KernelSpec::Gather { .. } => "gather",
            KernelSpec::Rope { .. } => "rope",
            KernelSpec::HeadRmsNorm { .. } => "head_rms_norm",
            KernelSpec::KvWrite { .. } => "kv_write",
            KernelSpec::Attention(_) => "attention",
        }
    }
}

/// The distinct kernels of a plan, named `k<index>_<kind>`.
#[derive(Default)]
pub struct KernelSet {
    pub specs: Vec<KernelSpec>,
}

impl KernelSet {
    pub fn intern(&mut self, spec: KernelSpec) -> String {
        let i = self.specs.iter().position(|s| *s == spec).unwrap_or_else(|| {
            self.specs.push(spec);
            self.specs.len() - 1
        });
        Self::name(i, &self.specs[i])
    }

    pub fn name(i: usize, spec: &KernelSpec) -> String {
        format!("k{i}_{}", spec.kind())
    }

    pub fn names(&self) -> Vec<String> {
        self.specs.iter().enumerate().map(|(i, s)| Self::name(i, s)).collect()
    }
}

