//! [`compile_with`]: check sizes, plan, place the arena, set up the ISA and the JIT module,
//! define the row functions of the parallel elementwise steps and reductions and the entry
//! point, and wrap the finished code in a [`Compiled`] handle.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use cranelift_codegen::ir::{self, AbiParam, InstBuilder, MemFlagsData, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use jjt_ir::{DType, Function, TensorType};

use crate::codegen::{self, Cg, Policy};
use crate::contract::Descriptor;
use crate::error::codegen_err;
use crate::handle::{Compiled, Entry};
use crate::imports::{self, Imports};
use crate::plan::{self, Buf, Step};
use crate::{JitError, Options, arena};

/// Compile `f` with default options.
pub fn compile(f: &Function) -> Result<Compiled, JitError> {
    compile_with(f, Options::default())
}

/// Compile `f`.
pub fn compile_with(f: &Function, opts: Options) -> Result<Compiled, JitError> {
    jjt_ir::verify(f).map_err(JitError::Invalid)?;
    let budget = opts.budget();
    check_sizes(f, budget)?;
    let plan = plan::plan_for(f, &opts)?;
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
    let policy = Policy::new(&opts, &*isa);
    let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
    imports::register(&mut jb);
    let mut module = JITModule::new(jb);
    let ptr = module.target_config().pointer_type();
    let g = Gen { f, plan: &plan, layout: &layout, opts: &opts, policy };

    // Large elementwise steps and reductions run their rows on several threads: each becomes a
    // function of (buffers..., first row, end row) that the entry calls through `jjt_par_map`.
    let mut fctx = FunctionBuilderContext::new();
    let mut parts: BTreeMap<usize, FuncId> = BTreeMap::new();
    let mut part_clif = String::new();
    let mut part_asm = String::new();
    // Their descriptors live as long as the code, as the entry's do.
    let mut part_descriptors = Vec::new();
    for (k, step) in plan.steps.iter().enumerate() {
        let body = match (
            step,
            codegen::parallel_map(step, policy.threads),
            codegen::parallel_reduce(step, policy.threads, policy.summation),
        ) {
            // A fused step always runs in its row function (on one thread or more).
            (Step::Fused(fused), _, _) => Body::FusedRows(fused),
            (_, Some(map), _) => Body::Rows(map),
            (_, None, Some(red)) => Body::ReduceRows(red),
            (_, None, None) => continue,
        };
        let mut sig = module.make_signature();
        for _ in 0..4 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.params.push(AbiParam::new(types::I64));
        sig.params.push(AbiParam::new(types::I64));
        // Generated names start `jjt_entry_` / `jjt_rows`, which no runtime symbol does
        // (`jjt_exp_f32`, `jjt_sgemm`, ...), so a model named after one cannot clash with it.
        let name = format!("jjt_rows{k}_{}", sanitize(&f.name));
        let id = module.declare_function(&name, Linkage::Local, &sig).map_err(codegen_err)?;
        let defined = g.define(&mut module, &mut fctx, id, sig, body)?;
        if let Some(c) = defined.clif {
            part_clif.push_str(&c);
            part_clif.push('\n');
        }
        if let Some(a) = defined.asm {
            part_asm.push_str(&format!("\n; {name}\n{a}"));
        }
        part_descriptors.extend(defined.descriptors);
        parts.insert(k, id);
    }

    let mut sig = module.make_signature();
    for _ in 0..4 {
        sig.params.push(AbiParam::new(ptr));
    }
    let fid = module
        .declare_function(&format!("jjt_entry_{}", sanitize(&f.name)), Linkage::Export, &sig)
        .map_err(codegen_err)?;
    let defined = g.define(&mut module, &mut fctx, fid, sig, Body::Entry(&parts))?;
    let clif = defined.clif.map(|c| c + &part_clif);
    module.finalize_definitions().map_err(codegen_err)?;
    let code = module.get_finalized_function(fid);
    // SAFETY: `code` is the address of the function just defined with the signature
    // `(ptr, ptr, ptr, ptr) -> ()` in the host's default (System V) calling convention, which
    // is `extern "C"` for four pointer arguments. The module owning the code is stored next to
    // the pointer in `Compiled` and freed only when `Compiled` is dropped, and the pointer never
    // leaves `Compiled`.
    let entry: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
    // Each constant's value is generated here, once, straight into the handle.
    let consts = plan.consts.iter().map(|c| c.value().data).collect();
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
        asm: defined.asm.map(|a| a + &part_asm),
        steps: plan.steps.len(),
        step_labels: defined.labels,
        step_nodes: plan.step_nodes.clone(),
        descriptors: defined.descriptors.into_iter().chain(part_descriptors).collect(),
    })
}

/// What one generated function computes.
enum Body<'s> {
    /// The entry point: every step, calling the row functions of the parallel ones.
    Entry(&'s BTreeMap<usize, FuncId>),
    /// One elementwise step over the rows `[params[4], params[5])` of its outermost axis.
    Rows(&'s plan::MapStep),
    /// One reduction over the rows `[params[4], params[5])` of its outermost kept axis.
    ReduceRows(&'s plan::ReduceStep),
    /// One fused step over the rows `[params[4], params[5])` of its batch axis.
    FusedRows(&'s plan::FusedStep),
}

/// A defined function's Cranelift IR text and machine-code listing (when asked for) and the
/// labels of its steps.
struct Defined {
    clif: Option<String>,
    asm: Option<String>,
    labels: Vec<String>,
    /// The descriptors of its runtime contractions (their addresses are in the code).
    #[expect(
        clippy::vec_box,
        reason = "the code holds each descriptor's address: boxes never move"
    )]
    descriptors: Vec<Box<Descriptor>>,
}

/// Everything a generated function is made from.
struct Gen<'a> {
    f: &'a Function,
    plan: &'a plan::Plan,
    layout: &'a arena::Layout,
    opts: &'a Options,
    policy: Policy,
}

impl Gen<'_> {
    /// Build and define function `id`; returns its Cranelift IR text and machine-code listing
    /// when the options ask for them.
    fn define(
        &self,
        module: &mut JITModule,
        fctx: &mut FunctionBuilderContext,
        id: FuncId,
        sig: ir::Signature,
        body: Body<'_>,
    ) -> Result<Defined, JitError> {
        let ptr = module.target_config().pointer_type();
        let mut labels = Vec::new();
        let descriptors;
        let mut ctx = module.make_context();
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let imports = Imports::declare(module, &mut ctx.func, self.opts)?;
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
                b.ins().load(ptr, MemFlagsData::new().with_notrap(), base, (8 * i) as i32)
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
            let mut cg = Cg::new(&mut b, bases, imports, self.policy);
            match body {
                Body::Entry(_) => {
                    cg.profile_mark(-1);
                    for (k, step) in self.plan.steps.iter().enumerate() {
                        match (part_refs.get(&k), step) {
                            (Some(&part), Step::Map(map)) => {
                                cg.call_rows(part, map, [ins, outs, arena_base, consts])
                            }
                            (Some(&part), Step::Reduce(red)) => {
                                cg.call_reduce_rows(part, red, [ins, outs, arena_base, consts])?
                            }
                            (Some(&part), Step::Fused(fused)) => {
                                cg.call_fused_rows(part, fused, [ins, outs, arena_base, consts])
                            }
                            _ => cg.step(step)?,
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
                Body::Rows(map) => cg.map_rows(map, p[4], p[5])?,
                Body::ReduceRows(red) => cg.reduce_rows(red, p[4], p[5], p[3])?,
                Body::FusedRows(fused) => cg.fused_rows(fused, p[4], p[5])?,
            }
            descriptors = std::mem::take(&mut cg.descriptors);
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
        Ok(Defined { clif, asm, labels, descriptors })
    }
}

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
