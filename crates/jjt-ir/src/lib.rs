//! jjt's intermediate representation: tensor types, the closed op set, functions as petgraph
//! graphs, the hash-consing builder, the verifier, the text format, DOT export, tracing of
//! Rust closures and the reference interpreter.
//!
//! ```
//! use jjt_ir::{Tensor, interp, text};
//! let f = text::parse("func f(x: f64[3]) -> f64[] { return sum(exp(x) * 2.0) }").unwrap();
//! let y = interp::eval(&f, &[Tensor::f64([3], vec![0.0, 0.0, 0.0]).unwrap()]).unwrap();
//! assert_eq!(y.to_f64_vec(), vec![6.0]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod builder;
pub mod dot;
pub mod error;
pub mod graph;
pub mod interp;
pub mod ops;
pub mod random;
pub mod sum;
pub mod tensor;
#[cfg(feature = "testgen")]
pub mod testgen;
pub mod text;
pub mod trace;
pub mod types;
pub mod verify;
pub mod walk;

pub use builder::{FunctionBuilder, ScalarSide};
pub use error::{ConvError, EvalError, IrError, TypeError};
pub use graph::{Function, Node, NodeId, Param};
pub use ops::{Binary, Compare, Op, ReduceKind, Unary};
pub use tensor::{Data, Tensor};
pub use trace::{TraceError, Tracer, Var, trace};
pub use types::{DType, Shape, TensorType};
pub use verify::{VerifyError, VerifyErrors, verify};
pub use walk::{NodeSet, Replay, Replayed, Visit};
