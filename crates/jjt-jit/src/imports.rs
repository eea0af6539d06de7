//! The runtime functions generated code calls, by symbol: the transcendental functions
//! ([`crate::libm`]), the runtime contraction ([`crate::contract`]), the matrix–vector kernel
//! ([`crate::matvec`]), the row runner (`pool`) and the
//! profile clock (`profile`). [`register`] tells the JIT where they are; [`Imports::declare`]
//! makes them callable from one generated function.

use std::collections::HashMap;

use cranelift_codegen::ir::{self, AbiParam, FuncRef, types};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};

use crate::error::codegen_err;
use crate::libm::{Libm, PerPrecision, Precision};
use crate::{JitError, Options, arena, contract, matvec, pool, profile};

/// The runtime contraction's symbol per precision.
const CONTRACT: PerPrecision<&str> =
    PerPrecision { f32: "jjt_contract_f32", f64: "jjt_contract_f64" };

/// The matrix–vector kernel's symbol per precision.
const MATVEC: PerPrecision<&str> = PerPrecision { f32: "jjt_matvec_f32", f64: "jjt_matvec_f64" };

/// Register the address of every runtime function with the JIT.
pub(crate) fn register(jb: &mut JITBuilder) {
    for l in Libm::ALL {
        for p in Precision::ALL {
            let (name, ptr) = l.symbol(p);
            jb.symbol(name, ptr);
        }
    }
    jb.symbol(CONTRACT.f32, contract::jjt_contract_f32 as *const u8);
    jb.symbol(CONTRACT.f64, contract::jjt_contract_f64 as *const u8);
    jb.symbol(MATVEC.f32, matvec::jjt_matvec_f32 as *const u8);
    jb.symbol(MATVEC.f64, matvec::jjt_matvec_f64 as *const u8);
    jb.symbol("jjt_par_map", pool::jjt_par_map as *const u8);
    jb.symbol("jjt_row_buffer", arena::jjt_row_buffer as *const u8);
    jb.symbol("jjt_profile_mark", profile::jjt_profile_mark as *const u8);
}

/// The runtime functions as references in one generated function.
pub(crate) struct Imports {
    /// Each transcendental function, per precision.
    pub libm: HashMap<(Libm, Precision), FuncRef>,
    /// The runtime contraction, per precision.
    pub contract: PerPrecision<FuncRef>,
    /// The matrix–vector kernel, per precision.
    pub matvec: PerPrecision<FuncRef>,
    /// `jjt_par_map`: a row function run over row ranges on several threads.
    pub par_map: FuncRef,
    /// `jjt_row_buffer`: the calling thread's buffer for a fused step's row.
    pub row_buffer: FuncRef,
    /// `jjt_profile_mark`, when profiling.
    pub profile: Option<FuncRef>,
}

impl Imports {
    /// Declare the runtime functions in `func` (the profile clock only if `opts` profile).
    pub fn declare(
        module: &mut JITModule,
        func: &mut ir::Function,
        opts: &Options,
    ) -> Result<Imports, JitError> {
        let ptr = module.target_config().pointer_type();
        let mut import = |module: &mut JITModule, name: &str, sig: &ir::Signature| {
            let fid = module.declare_function(name, Linkage::Import, sig).map_err(codegen_err)?;
            Ok::<_, JitError>(module.declare_func_in_func(fid, func))
        };
        let mut libm = HashMap::new();
        for l in Libm::ALL {
            for p in Precision::ALL {
                let t = match p {
                    Precision::F32 => types::F32,
                    Precision::F64 => types::F64,
                };
                let mut s = module.make_signature();
                for _ in 0..l.arity() {
                    s.params.push(AbiParam::new(t));
                }
                s.returns.push(AbiParam::new(t));
                libm.insert((l, p), import(module, l.symbol(p).0, &s)?);
            }
        }
        // (descriptor, lhs, rhs, output, threads).
        let mut s = module.make_signature();
        for _ in 0..4 {
            s.params.push(AbiParam::new(ptr));
        }
        s.params.push(AbiParam::new(types::I64));
        let contract = PerPrecision {
            f32: import(module, CONTRACT.f32, &s)?,
            f64: import(module, CONTRACT.f64, &s)?,
        };
        // (matrix, lda, rows, k, parts, x0, y0, inc0, x1, y1, inc1).
        let mut s = module.make_signature();
        for t in [
            ptr,
            types::I64,
            types::I64,
            types::I64,
            types::I64,
            ptr,
            ptr,
            types::I64,
            ptr,
            ptr,
            types::I64,
        ] {
            s.params.push(AbiParam::new(t));
        }
        let matvec = PerPrecision {
            f32: import(module, MATVEC.f32, &s)?,
            f64: import(module, MATVEC.f64, &s)?,
        };
        let mut s = module.make_signature();
        for _ in 0..5 {
            s.params.push(AbiParam::new(ptr));
        }
        s.params.push(AbiParam::new(types::I64));
        s.params.push(AbiParam::new(types::I64));
        let par_map = import(module, "jjt_par_map", &s)?;
        // (bytes) -> buffer.
        let mut s = module.make_signature();
        s.params.push(AbiParam::new(types::I64));
        s.returns.push(AbiParam::new(ptr));
        let row_buffer = import(module, "jjt_row_buffer", &s)?;
        let profile = if opts.profile {
            let mut s = module.make_signature();
            s.params.push(AbiParam::new(types::I64));
            Some(import(module, "jjt_profile_mark", &s)?)
        } else {
            None
        };
        Ok(Imports { libm, contract, matvec, par_map, row_buffer, profile })
    }
}
