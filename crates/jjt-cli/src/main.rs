//! `jjt`: inspect and run jjt models from the command line.
//!
//! - `jjt dump MODEL [--stage traced] [--format text|dot] [-o FILE]` prints a stage's graph;
//! - `jjt eval MODEL --in NAME=FILE.npy ... [-o OUT.npy] [--backend interp]` evaluates it.
//!
//! Errors print one message (with line:col and a caret for model text) and exit with status 1;
//! usage errors exit with status 2.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use jjt_ir::text::{ModelFileError, parse_file};
use jjt_ir::{EvalError, Function, Tensor, interp};

#[derive(Parser, Debug)]
#[command(
    name = "jjt",
    version,
    about = "A compiler for products of Jacobians: inspect and run jjt models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a model's graph at a pipeline stage, as canonical text or Graphviz DOT.
    Dump {
        /// The model file (jjt text format, see docs/format.md).
        model: PathBuf,
        /// Which stage to print.
        #[arg(long, value_enum, default_value_t = Stage::Traced)]
        stage: Stage,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Evaluate a model on .npy inputs.
    Eval {
        /// The model file.
        model: PathBuf,
        /// An input as NAME=FILE.npy (repeat once per input); a bare FILE.npy is accepted
        /// when the model has exactly one input.
        #[arg(long = "in", value_name = "NAME=FILE.npy")]
        inputs: Vec<String>,
        /// Write the result to this .npy file; without it the values are printed.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// How to evaluate.
        #[arg(long, value_enum, default_value_t = Backend::Interp)]
        backend: Backend,
    },
}

/// Pipeline stages `dump` can print.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Stage {
    /// The graph as parsed or traced, before any transform.
    Traced,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Canonical text (parses back to the same graph).
    Text,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    /// The reference interpreter.
    Interp,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Model(#[from] ModelFileError),
    #[error("cannot read input `{name}` from {}: {source}", path.display())]
    ReadInput { name: String, path: PathBuf, source: jjt_npy::NpyError },
    #[error("`--in {arg}`: expected NAME=FILE.npy{}", if *single { "" } else { " (a bare FILE.npy is only accepted when the model has one input)" })]
    BadInArg { arg: String, single: bool },
    #[error("`--in {name}=...`: the model has no input `{name}`; its inputs are: {known}")]
    UnknownInput { name: String, known: String },
    #[error("input `{0}` is given twice")]
    DuplicateInput(String),
    #[error("missing input `{name}` of type {ty}: pass --in {name}=FILE.npy")]
    MissingInput { name: String, ty: String },
    #[error("input `{name}` ({}): expected {expected}, the file holds {actual}{hint}", path.display())]
    InputType { name: String, path: PathBuf, expected: String, actual: String, hint: String },
    #[error("evaluation failed: {0}")]
    Eval(#[from] EvalError),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    WriteNpy { path: PathBuf, source: jjt_npy::NpyError },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Dump { model, stage, format, output } => {
            let f = parse_file(&model)?;
            let g = match stage {
                Stage::Traced => f,
            };
            let text = match format {
                Format::Text => jjt_ir::text::print(&g),
                Format::Dot => jjt_ir::dot::to_dot(&g),
            };
            emit(&text, output.as_deref())
        }
        Command::Eval { model, inputs, output, backend } => {
            let f = parse_file(&model)?;
            let args = bind_inputs(&f, &inputs)?;
            let y = match backend {
                Backend::Interp => interp::eval(&f, &args)?,
            };
            match output {
                Some(path) => jjt_npy::write_file(&path, &y.into_array())
                    .map_err(|source| CliError::WriteNpy { path, source }),
                None => emit(&format_tensor(&y), None),
            }
        }
    }
}

fn emit(text: &str, output: Option<&Path>) -> Result<(), CliError> {
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|source| CliError::Write { path: path.to_path_buf(), source }),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Read `--in` arguments into tensors in signature order, checking names and types.
fn bind_inputs(f: &Function, args: &[String]) -> Result<Vec<Tensor>, CliError> {
    let params = f.params();
    let single = params.len() == 1;
    let mut bound: Vec<Option<(PathBuf, Tensor)>> = vec![None; params.len()];
    for arg in args {
        let (name, file) = match arg.split_once('=') {
            Some((n, p)) if !n.is_empty() && !p.is_empty() => (n.to_string(), p),
            None if single && !arg.is_empty() => (params[0].name.clone(), arg.as_str()),
            _ => return Err(CliError::BadInArg { arg: arg.clone(), single }),
        };
        let Some(i) = params.iter().position(|p| p.name == name) else {
            let known = params
                .iter()
                .map(|p| format!("{}: {}", p.name, p.ty))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CliError::UnknownInput { name, known });
        };
        if bound[i].is_some() {
            return Err(CliError::DuplicateInput(name));
        }
        let path = PathBuf::from(file);
        let t = jjt_npy::read_file(&path).map(Tensor::from_array).map_err(|source| {
            CliError::ReadInput { name: name.clone(), path: path.clone(), source }
        })?;
        if t.ty() != params[i].ty {
            let hint = if t.shape == params[i].ty.shape {
                format!(
                    " (convert it with `arr.astype(np.float{})`)",
                    if params[i].ty.dtype == jjt_ir::DType::F32 { 32 } else { 64 }
                )
            } else {
                String::new()
            };
            return Err(CliError::InputType {
                name,
                path,
                expected: params[i].ty.to_string(),
                actual: t.ty().to_string(),
                hint,
            });
        }
        bound[i] = Some((path, t));
    }
    params
        .iter()
        .zip(bound)
        .map(|(p, b)| {
            b.map(|(_, t)| t).ok_or_else(|| CliError::MissingInput {
                name: p.name.clone(),
                ty: p.ty.to_string(),
            })
        })
        .collect()
}

/// A tensor as text: its type, then the values row by row.
fn format_tensor(t: &Tensor) -> String {
    let ty = t.ty();
    let v = t.to_f64_vec();
    let width = ty.shape.dims().last().copied().unwrap_or(1).max(1);
    let mut out = format!("{ty}\n");
    for row in v.chunks(width) {
        let cells: Vec<String> =
            row.iter().map(|&x| jjt_ir::ops::constant::fmt_value(x, ty.dtype)).collect();
        out.push_str(&cells.join(" "));
        out.push('\n');
    }
    out
}
