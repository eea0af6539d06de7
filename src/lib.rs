//! jjt: a compiler for products of Jacobians.
#![forbid(unsafe_code)]
pub use jjt_ir as ir;
pub use jjt_npy as npy;
