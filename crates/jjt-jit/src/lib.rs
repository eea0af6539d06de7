//! jjt's backend: native code for any graph, with Cranelift.
//!
//! [`compile`] plans a [`Function`] into loop steps over strided buffers ([`plan`]), places the
//! scratch buffers in one arena ([`arena`]), lowers everything to Cranelift IR
//! (`codegen`), and returns a [`Compiled`] handle. The handle owns its JIT memory, checks
//! argument types, is `Send + Sync`, and gives each concurrent caller its own arena.
//!
//! This is the only crate of the workspace with `unsafe` code: the one conversion from the
//! JIT's code pointer to a function pointer, the calls through it, freeing the code memory,
//! and the runtime functions the generated code calls with raw buffer pointers (the matrix
//! multiply in `gemm`, the row runner in `pool`, which hand disjoint parts of one output to
//! other threads); each block states why it is sound.

#![warn(missing_docs)]

pub mod arena;
mod codegen;
pub mod gemm;
pub mod libm;
pub mod plan;
mod pool;
mod profile;

pub use profile::take_profile;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use cranelift_codegen::ir::{AbiParam, InstBuilder, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};
use jjt_ir::{DType, Data, Function, Tensor, TensorType};

use crate::libm::Libm;
use crate::plan::Buf;

/// Errors from compiling or calling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JitError {
    /// The function does not verify.
    #[error("{0}")]
    Invalid(jjt_ir::VerifyErrors),
    /// Cranelift rejected the generated code (a bug in jjt; the message has the details).
    #[error("code generation failed: {0}")]
    Codegen(String),
    /// Something the backend cannot do.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Wrong number of arguments.
    #[error("`{function}` takes {expected} inputs, got {got}")]
    InputCount {
        /// Function name.
        function: String,
        /// Inputs declared.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An argument of the wrong type.
    #[error("input #{index} (`{name}`): expected {expected}, got {actual}")]
    InputType {
        /// Position.
        index: usize,
        /// Input name.
        name: String,
        /// Declared type.
        expected: TensorType,
        /// Given type.
        actual: TensorType,
    },
    /// A raw buffer of the wrong byte length.
    #[error("{what} #{index}: expected {expected} bytes, got {actual}")]
    BufferSize {
        /// "input" or "output".
        what: &'static str,
        /// Position.
        index: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The arena could not be allocated.
    #[error("cannot allocate the {0}-byte arena")]
    Alloc(usize),
    /// A value, the constants or the scratch memory would exceed the memory budget.
    #[error(
        "{what} needs {needed} bytes, over the budget of {limit} bytes; compute the kernel in tiles (smaller batches) or simplify the model"
    )]
    TooLarge {
        /// What is too large.
        what: String,
        /// Bytes needed (saturated at u64::MAX).
        needed: u64,
        /// The budget.
        limit: u64,
    },
}

/// Scratch memory for one call: `u64` words (so 8-byte aligned), with the arena starting at
/// the first 64-byte boundary inside.
struct Arena {
    words: Vec<u64>,
}

impl Arena {
    fn new(bytes: usize) -> Result<Arena, JitError> {
        let n = bytes.div_ceil(8) + 8;
        let mut words = Vec::new();
        words.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
        words.resize(n, 0);
        Ok(Arena { words })
    }

    fn base(&mut self) -> *mut u8 {
        let p = self.words.as_mut_ptr().cast::<u8>();
        p.wrapping_add(p.align_offset(64))
    }
}

/// Options for [`compile_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep the Cranelift IR text of the entry function ([`Compiled::clif`]).
    pub keep_clif: bool,
    /// Keep Cranelift's machine-code listing ([`Compiled::asm`]).
    pub keep_asm: bool,
    /// Compute exactly what the interpreter computes, bit for bit: no FMA, no reassociated
    /// (vector) sums, no calls to the matrix multiply. Elementwise code is SIMD either way.
    pub strict: bool,
    /// Never call the matrix multiply (for measuring where it pays off).
    pub no_gemm: bool,
    /// Memory budget in bytes for the constants, the scratch arena and any single value
    /// (0: [`MAX_BYTES`]).
    pub max_bytes: u64,
    /// Time every step of every call on the calling thread, for [`take_profile`] (a call to a
    /// clock after each step; [`Compiled::step_labels`] says what each step is).
    pub profile: bool,
    /// Threads a large matrix multiply may split across (0: every core, as
    /// `std::thread::available_parallelism` reports; 1: the calling thread only). The calling
    /// thread computes one part and process-wide helper threads (one per further core) the
    /// others; a part finding no idle helper (kernels called from several threads at once, as
    /// `jjt kernel --tile` does) runs on its caller, so the cores are shared, never
    /// oversubscribed. Helpers spin for 2 ms after each part before sleeping (see `pool`).
    pub threads: usize,
}

impl Options {
    /// The thread count a matrix multiply uses: [`Options::threads`], with 0 resolved to the
    /// number of cores.
    pub fn gemm_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        }
    }
}

type Entry = unsafe extern "C" fn(*const *const u8, *const *mut u8, *mut u8, *const *const u8);

/// A compiled function. Owns its machine code (freed on drop) and constants; `call` takes
/// `&self` and may run on many threads at once, each with its own scratch arena.
pub struct Compiled {
    name: String,
    entry: Entry,
    module: Mutex<Option<JITModule>>,
    params: Vec<(String, TensorType)>,
    outputs: Vec<TensorType>,
    consts: Vec<Data>,
    arena_bytes: usize,
    arenas: Mutex<Vec<Arena>>,
    clif: Option<String>,
    asm: Option<String>,
    steps: usize,
    step_labels: Vec<String>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("name", &self.name)
            .field("inputs", &self.params)
            .field("outputs", &self.outputs)
            .field("arena_bytes", &self.arena_bytes)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// Compile `f` with default options.
pub fn compile(f: &Function) -> Result<Compiled, JitError> {
    compile_with(f, Options::default())
}

fn codegen_err(e: impl fmt::Display) -> JitError {
    JitError::Codegen(e.to_string())
}

/// Compile `f`.
pub fn compile_with(f: &Function, opts: Options) -> Result<Compiled, JitError> {
    jjt_ir::verify(f).map_err(JitError::Invalid)?;
    let budget = if opts.max_bytes == 0 { MAX_BYTES } else { opts.max_bytes };
    check_sizes(f, budget)?;
    let plan = plan::plan(f)?;
    let layout = arena::layout(&plan);
    if layout.size as u64 > budget {
        return Err(JitError::TooLarge {
            what: "the scratch arena".into(),
            needed: layout.size as u64,
            limit: budget,
        });
    }

    let mut flag_builder = settings::builder();
    flag_builder.set("opt_level", "speed").map_err(codegen_err)?;
    flag_builder
        .set("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" })
        .map_err(codegen_err)?;
    flag_builder.set("is_pic", "false").map_err(codegen_err)?;
    flag_builder.set("use_colocated_libcalls", "false").map_err(codegen_err)?;
    let isa_builder = cranelift_native::builder().map_err(codegen_err)?;
    let isa = isa_builder.finish(settings::Flags::new(flag_builder)).map_err(codegen_err)?;
    let fma = isa.has_native_fma() && !opts.strict;
    let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
    for l in Libm::ALL {
        for wide in [false, true] {
            let (name, ptr) = l.symbol(wide);
            jb.symbol(name, ptr);
        }
    }
    jb.symbol("jjt_sgemm", gemm::jjt_sgemm as *const u8);
    jb.symbol("jjt_dgemm", gemm::jjt_dgemm as *const u8);
    jb.symbol("jjt_par_map", pool::jjt_par_map as *const u8);
    jb.symbol("jjt_profile_mark", profile::jjt_profile_mark as *const u8);
    let mut module = JITModule::new(jb);
    let ptr = module.target_config().pointer_type();
    let threads = opts.gemm_threads();
    let g = Gen { f, plan: &plan, layout: &layout, opts: &opts, fma, threads };

    // Large elementwise steps run their rows on several threads: each becomes a function of
    // (buffers..., first row, end row) that the entry calls through `jjt_par_map`.
    let mut fctx = FunctionBuilderContext::new();
    let mut parts: BTreeMap<usize, cranelift_module::FuncId> = BTreeMap::new();
    let mut part_clif = String::new();
    for (k, step) in plan.steps.iter().enumerate() {
        if !codegen::parallel_map(step, threads) {
            continue;
        }
        let mut sig = module.make_signature();
        for _ in 0..4 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.params.push(AbiParam::new(types::I64));
        sig.params.push(AbiParam::new(types::I64));
        let name = format!("jjt_{}_rows{k}", sanitize(&f.name));
        let id = module.declare_function(&name, Linkage::Local, &sig).map_err(codegen_err)?;
        let (clif, _, _) = g.define(&mut module, &mut fctx, id, sig, Body::Rows(step))?;
        if let Some(c) = clif {
            part_clif.push_str(&c);
            part_clif.push('\n');
        }
        parts.insert(k, id);
    }

    let mut sig = module.make_signature();
    for _ in 0..4 {
        sig.params.push(AbiParam::new(ptr));
    }
    let fid = module
        .declare_function(&format!("jjt_{}", sanitize(&f.name)), Linkage::Export, &sig)
        .map_err(codegen_err)?;
    let (clif, asm, step_labels) =
        g.define(&mut module, &mut fctx, fid, sig, Body::Entry(&parts))?;
    let clif = clif.map(|c| c + &part_clif);
    module.finalize_definitions().map_err(codegen_err)?;
    let code = module.get_finalized_function(fid);
    // SAFETY: `code` is the address of the function just defined with the signature
    // `(ptr, ptr, ptr, ptr) -> ()` in the host's default (System V) calling convention, which
    // is `extern "C"` for four pointer arguments. The module owning the code is stored next to
    // the pointer in `Compiled` and freed only when `Compiled` is dropped, and the pointer never
    // leaves `Compiled`.
    let entry: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
    let consts = plan.consts.into_iter().map(|t| t.data).collect();
    Ok(Compiled {
        name: f.name.clone(),
        entry,
        module: Mutex::new(Some(module)),
        params: f.params().iter().map(|p| (p.name.clone(), p.ty.clone())).collect(),
        outputs: f
            .output_types()
            .into_iter()
            .map(|t| t.cloned().unwrap_or_else(|| TensorType::scalar(DType::F64)))
            .collect(),
        consts,
        arena_bytes: layout.size,
        arenas: Mutex::new(Vec::new()),
        clif,
        asm,
        steps: plan.steps.len(),
        step_labels,
    })
}

/// What one generated function computes.
enum Body<'s> {
    /// The entry point: every step, calling the row functions of the parallel ones.
    Entry(&'s BTreeMap<usize, cranelift_module::FuncId>),
    /// One elementwise step over the rows `[params[4], params[5])` of its outermost axis.
    Rows(&'s plan::Step),
}

/// A defined function's Cranelift IR text and machine-code listing (when asked for) and the
/// labels of its steps.
type Defined = (Option<String>, Option<String>, Vec<String>);

/// Everything a generated function is made from.
struct Gen<'a> {
    f: &'a Function,
    plan: &'a plan::Plan,
    layout: &'a arena::Layout,
    opts: &'a Options,
    fma: bool,
    threads: usize,
}

impl Gen<'_> {
    /// Build and define function `id`; returns its Cranelift IR text and machine-code listing
    /// when the options ask for them.
    fn define(
        &self,
        module: &mut JITModule,
        fctx: &mut FunctionBuilderContext,
        id: cranelift_module::FuncId,
        sig: cranelift_codegen::ir::Signature,
        body: Body<'_>,
    ) -> Result<Defined, JitError> {
        let ptr = module.target_config().pointer_type();
        let mut labels = Vec::new();
        let mut ctx = module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        // Imports.
        let mut libm_refs = HashMap::new();
        for l in Libm::ALL {
            for wide in [false, true] {
                let t = if wide { types::F64 } else { types::F32 };
                let mut s = module.make_signature();
                for _ in 0..l.arity() {
                    s.params.push(AbiParam::new(t));
                }
                s.returns.push(AbiParam::new(t));
                let fid = module
                    .declare_function(l.symbol(wide).0, Linkage::Import, &s)
                    .map_err(codegen_err)?;
                libm_refs.insert((l, wide), module.declare_func_in_func(fid, &mut ctx.func));
            }
        }
        let mut gemm_refs = HashMap::new();
        for (wide, name) in [(false, "jjt_sgemm"), (true, "jjt_dgemm")] {
            let mut s = module.make_signature();
            codegen::gemm_signature(&mut s);
            let fid = module.declare_function(name, Linkage::Import, &s).map_err(codegen_err)?;
            gemm_refs.insert(wide, module.declare_func_in_func(fid, &mut ctx.func));
        }
        let mut s = module.make_signature();
        for _ in 0..5 {
            s.params.push(AbiParam::new(ptr));
        }
        s.params.push(AbiParam::new(types::I64));
        s.params.push(AbiParam::new(types::I64));
        let fid =
            module.declare_function("jjt_par_map", Linkage::Import, &s).map_err(codegen_err)?;
        let par_map = module.declare_func_in_func(fid, &mut ctx.func);
        let profile = if self.opts.profile {
            let mut s = module.make_signature();
            s.params.push(AbiParam::new(types::I64));
            let fid = module
                .declare_function("jjt_profile_mark", Linkage::Import, &s)
                .map_err(codegen_err)?;
            Some(module.declare_func_in_func(fid, &mut ctx.func))
        } else {
            None
        };
        let mut part_refs = HashMap::new();
        if let Body::Entry(parts) = &body {
            for (&k, &pid) in parts.iter() {
                part_refs.insert(k, module.declare_func_in_func(pid, &mut ctx.func));
            }
        }
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            b.seal_block(entry);
            let p = b.block_params(entry).to_vec();
            let (ins, outs, arena_base, consts) = (p[0], p[1], p[2], p[3]);
            let mut bases = HashMap::new();
            let load_ptr = |b: &mut FunctionBuilder, base, i: usize| {
                b.ins().load(
                    ptr,
                    cranelift_codegen::ir::MemFlagsData::new().with_notrap(),
                    base,
                    (8 * i) as i32,
                )
            };
            for i in 0..self.f.params().len() {
                bases.insert(Buf::Input(i), load_ptr(&mut b, ins, i));
            }
            for i in 0..self.f.outputs().len() {
                bases.insert(Buf::Output(i), load_ptr(&mut b, outs, i));
            }
            for i in 0..self.plan.consts.len() {
                bases.insert(Buf::Const(i), load_ptr(&mut b, consts, i));
            }
            for (i, &off) in self.layout.offsets.iter().enumerate() {
                let v = b.ins().iadd_imm_s(arena_base, off as i64);
                bases.insert(Buf::Scratch(i), v);
            }
            let mut cg = codegen::Cg {
                b: &mut b,
                bases,
                imports: codegen::Imports { libm: libm_refs, gemm: gemm_refs, par_map, profile },
                fma: self.fma,
                vaxis: 0,
                strict: self.opts.strict,
                gemm: !self.opts.strict && !self.opts.no_gemm,
                threads: self.threads,
                rows: None,
                how: "",
            };
            match body {
                Body::Entry(_) => {
                    cg.profile_mark(-1);
                    for (k, step) in self.plan.steps.iter().enumerate() {
                        match part_refs.get(&k) {
                            Some(&part) => {
                                cg.call_rows(part, step, [ins, outs, arena_base, consts])
                            }
                            None => cg.step(step)?,
                        }
                        cg.profile_mark(k as i64);
                        let how = if cg.how.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", cg.how)
                        };
                        labels.push(format!("{}{how}", codegen::describe(step)));
                    }
                }
                Body::Rows(step) => cg.step_rows(step, p[4], p[5])?,
            }
            b.ins().return_(&[]);
            b.finalize(module.target_config());
        }
        let clif = self.opts.keep_clif.then(|| ctx.func.display().to_string());
        ctx.set_disasm(self.opts.keep_asm);
        if let Err(e) = module.define_function(id, &mut ctx) {
            let detail = match &e {
                cranelift_module::ModuleError::Compilation(
                    cranelift_codegen::CodegenError::Verifier(errs),
                ) => cranelift_codegen::print_errors::pretty_verifier_error(
                    &ctx.func,
                    None,
                    errs.clone(),
                ),
                other => other.to_string(),
            };
            return Err(JitError::Codegen(detail));
        }
        let asm = if self.opts.keep_asm {
            ctx.compiled_code().and_then(|c| c.vcode.clone())
        } else {
            None
        };
        module.clear_context(&mut ctx);
        Ok((clif, asm, labels))
    }
}

/// The most memory one compiled function may use for its constants and for its arena (each),
/// and the largest single value: 8 GiB.
pub const MAX_BYTES: u64 = 8 << 30;

/// Every value must have a byte size that fits the budget (so no size arithmetic in the plan,
/// the arena or the generated loops can overflow), and the constants evaluated at compile time
/// must fit it together.
fn check_sizes(f: &Function, budget: u64) -> Result<(), JitError> {
    let mut consts = 0u64;
    for id in f.node_ids() {
        let Some(node) = f.node(id) else { continue };
        let bytes = node
            .ty
            .shape
            .checked_numel()
            .and_then(|n| (n as u64).checked_mul(plan::item_size(node.ty.dtype) as u64))
            .unwrap_or(u64::MAX);
        if bytes > budget || node.ty.shape.dims().iter().any(|&d| d as u64 > budget) {
            return Err(JitError::TooLarge {
                what: format!("value {id} of type {}", node.ty),
                needed: bytes,
                limit: budget,
            });
        }
        if matches!(node.op, jjt_ir::Op::Const(_)) {
            consts = consts.saturating_add(bytes);
        }
    }
    if consts > budget {
        return Err(JitError::TooLarge {
            what: "the constants".into(),
            needed: consts,
            limit: budget,
        });
    }
    Ok(())
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn data_ptr(d: &Data) -> *const u8 {
    match d {
        Data::F32(v) => v.as_ptr().cast(),
        Data::F64(v) => v.as_ptr().cast(),
        Data::Bool(v) => v.as_ptr().cast(),
    }
}

fn data_mut_ptr(d: &mut Data) -> *mut u8 {
    match d {
        Data::F32(v) => v.as_mut_ptr().cast(),
        Data::F64(v) => v.as_mut_ptr().cast(),
        Data::Bool(v) => v.as_mut_ptr().cast(),
    }
}

fn zeros(ty: &TensorType) -> Result<Data, JitError> {
    let n = ty.numel();
    let bytes = n.saturating_mul(plan::item_size(ty.dtype));
    Ok(match ty.dtype {
        DType::F32 => {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
            v.resize(n, 0.0f32);
            Data::F32(v)
        }
        DType::F64 => {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
            v.resize(n, 0.0f64);
            Data::F64(v)
        }
        DType::Bool => {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
            v.resize(n, false);
            Data::Bool(v)
        }
    })
}

impl Compiled {
    /// Run on `inputs` (in signature order); returns the outputs.
    pub fn call(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, JitError> {
        self.check_inputs(inputs)?;
        let mut outs: Vec<Tensor> = self
            .outputs
            .iter()
            .map(|t| Ok(Tensor { shape: t.shape.clone(), data: zeros(t)? }))
            .collect::<Result<_, JitError>>()?;
        let in_ptrs: Vec<*const u8> = inputs.iter().map(|t| data_ptr(&t.data)).collect();
        let out_ptrs: Vec<*mut u8> = outs.iter_mut().map(|t| data_mut_ptr(&mut t.data)).collect();
        self.run(&in_ptrs, &out_ptrs)?;
        Ok(outs)
    }

    /// Run on raw little-endian buffers (inputs in signature order; outputs written in place).
    /// Buffers may start at any address; their lengths must match the types exactly.
    pub fn call_raw(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<(), JitError> {
        if inputs.len() != self.params.len() {
            return Err(JitError::InputCount {
                function: self.name.clone(),
                expected: self.params.len(),
                got: inputs.len(),
            });
        }
        for (index, (b, (_, t))) in inputs.iter().zip(&self.params).enumerate() {
            let expected = t.numel() * plan::item_size(t.dtype);
            if b.len() != expected {
                return Err(JitError::BufferSize {
                    what: "input",
                    index,
                    expected,
                    actual: b.len(),
                });
            }
        }
        if outputs.len() != self.outputs.len() {
            return Err(JitError::BufferSize {
                what: "output count",
                index: 0,
                expected: self.outputs.len(),
                actual: outputs.len(),
            });
        }
        for (index, (b, t)) in outputs.iter().zip(&self.outputs).enumerate() {
            let expected = t.numel() * plan::item_size(t.dtype);
            if b.len() != expected {
                return Err(JitError::BufferSize {
                    what: "output",
                    index,
                    expected,
                    actual: b.len(),
                });
            }
        }
        let in_ptrs: Vec<*const u8> = inputs.iter().map(|b| b.as_ptr()).collect();
        let out_ptrs: Vec<*mut u8> = outputs.iter_mut().map(|b| b.as_mut_ptr()).collect();
        self.run(&in_ptrs, &out_ptrs)
    }

    fn check_inputs(&self, inputs: &[&Tensor]) -> Result<(), JitError> {
        if inputs.len() != self.params.len() {
            return Err(JitError::InputCount {
                function: self.name.clone(),
                expected: self.params.len(),
                got: inputs.len(),
            });
        }
        for (index, (t, (name, ty))) in inputs.iter().zip(&self.params).enumerate() {
            let consistent = t.data.len() == t.shape.checked_numel().unwrap_or(usize::MAX);
            if t.ty() != *ty || !consistent {
                return Err(JitError::InputType {
                    index,
                    name: name.clone(),
                    expected: ty.clone(),
                    actual: t.ty(),
                });
            }
        }
        Ok(())
    }

    fn run(&self, inputs: &[*const u8], outputs: &[*mut u8]) -> Result<(), JitError> {
        let mut arena = match self.arenas.lock().map(|mut pool| pool.pop()) {
            Ok(Some(a)) => a,
            _ => Arena::new(self.arena_bytes)?,
        };
        let consts: Vec<*const u8> = self.consts.iter().map(data_ptr).collect();
        // SAFETY: the entry point was compiled from a verified graph whose every memory access
        // stays within the buffers described by the signature types: `inputs` and `outputs`
        // hold one pointer per parameter / output, each to at least the number of bytes its
        // type needs (checked by the callers `call` / `call_raw`); `consts` points to the
        // constants this handle owns; the arena is at least `arena_bytes` long from its 64-byte
        // aligned base and used by this call only. Outputs do not alias inputs (distinct
        // borrows). The code memory is alive: `self.module` is freed only in `drop`.
        unsafe { (self.entry)(inputs.as_ptr(), outputs.as_ptr(), arena.base(), consts.as_ptr()) };
        if let Ok(mut pool) = self.arenas.lock() {
            pool.push(arena);
        }
        Ok(())
    }

    /// Bytes of scratch memory one call uses (the arena; inputs and outputs not counted).
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// The input types, in order.
    pub fn inputs(&self) -> impl Iterator<Item = &TensorType> {
        self.params.iter().map(|(_, t)| t)
    }

    /// The output types, in order.
    pub fn outputs(&self) -> &[TensorType] {
        &self.outputs
    }

    /// The Cranelift IR, if kept ([`Options::keep_clif`]).
    pub fn clif(&self) -> Option<&str> {
        self.clif.as_deref()
    }

    /// The machine code listing, if kept ([`Options::keep_asm`]).
    pub fn asm(&self) -> Option<&str> {
        self.asm.as_deref()
    }

    /// Number of loop steps in the generated code.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// What each step is (kind, types, and how it was compiled), in execution order: the
    /// entries of [`take_profile`] for this function.
    pub fn step_labels(&self) -> &[String] {
        &self.step_labels
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(m) = module {
            // SAFETY: `drop` has `&mut self`, so no call through `entry` is running or can start;
            // `entry` is private and dies with `self`.
            unsafe { m.free_memory() };
        }
    }
}
