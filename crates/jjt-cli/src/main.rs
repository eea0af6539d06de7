//! `jjt`: inspect, differentiate and run jjt models from the command line.
//!
//! - `jjt dump MODEL [--stage traced|jvp|linearize|vjp|kernel|apply] [--format text|dot]`
//! - `jjt eval MODEL --in NAME=FILE.npy ... [-o OUT.npy]`
//! - `jjt kernel MODEL --wrt NAMES --x1 NAME=FILE --x2 NAME=FILE [--shared NAME=FILE] -o K.npy`
//! - `jjt apply ... --v V.npy -o KV.npy`
//! - `jjt check MODEL --wrt NAMES`
//! - `jjt bench MODEL [--wrt ITEMS --shared ITEMS --x1 NAME=FILE --x2 NAME=FILE] [-o OUT.npy]`
//!
//! Every `--wrt` / `--shared` item is `NAME` or `NAME=FILE.npy`, comma-separated or repeated.
//!
//! Errors print one message (with line:col and a caret for model text) and exit with status 1;
//! usage errors the argument parser finds exit with status 2 (flags that parse but do not go
//! together are found later: [`CliError::Usage`], status 1).

#![forbid(unsafe_code)]

/// `println!` for results: a closed pipe (`jjt ... | head`) ends the program quietly, as Unix
/// tools do, instead of panicking (see [`write_out`]).
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($t)*)))
    };
}

mod args;
mod bench;
mod bind;
mod check;
mod dump;
mod error;
mod grid;
mod output;
mod pipeline;
mod progress;
mod slurm;
mod tiles;

#[cfg(test)]
mod tests;

use std::process::ExitCode;

use clap::Parser;

use args::{Backend, Cli, Command};
pub(crate) use error::CliError;
pub(crate) use output::write_out;
use output::{write_outputs, write_result};
use pipeline::{kernel_graph, load_selecting, optimized, pick_output};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let CliError::Jit(jjt_jit::JitError::TooLarge { .. }) = e {
                eprintln!(
                    "hint: raise --max-memory MIB, or compute K in blocks with \
                     `jjt kernel ... --rows A:B --cols C:D` and `jjt merge` (docs/scale.md)"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// A model exported with a batch of one (every per-side input and the output of shape
/// `[1, …]`), given batches of examples: K without the output's size-1 axis, `[B1, B2, out,
/// out]` rather than `[B1, B2, 1, out, 1, out]` (`--mode diagonal`: `[B1, B2, out]`).
fn squeeze_example_axes(
    f: &jjt_ir::Function,
    spec: &jjt_ad::KernelSpec,
    k: jjt_ir::Tensor,
) -> Result<jjt_ir::Tensor, CliError> {
    let shape = squeezed_dims(f, spec, k.shape.dims());
    if shape == k.shape.dims() {
        return Ok(k);
    }
    Ok(jjt_ir::Tensor::new(shape, k.data)?)
}

/// The dims [`squeeze_example_axes`] gives a kernel of `dims`.
fn squeezed_dims(f: &jjt_ir::Function, spec: &jjt_ad::KernelSpec, dims: &[usize]) -> Vec<usize> {
    if spec.batch.is_none() || !spec.batch_of_one(f) {
        return dims.to_vec();
    }
    let drop = spec.batch_of_one_axes(f);
    if drop.iter().any(|&a| dims.get(a) != Some(&1)) {
        return dims.to_vec();
    }
    dims.iter().enumerate().filter(|(a, _)| !drop.contains(a)).map(|(_, &d)| d).collect()
}

/// `jjt import`: the model as jjt text at `out`, every weight (ONNX initializers of rank ≥ 1,
/// and the arrays of `defaults` named like inputs) in `out` with `.npz`, which the text names
/// as those inputs' defaults.
fn import(
    model: &std::path::Path,
    out: &std::path::Path,
    defaults: Option<&std::path::Path>,
    pick: Option<&str>,
) -> Result<(), CliError> {
    let loaded = jjt_import::load_with(model, &|_, dims| !dims.is_empty())?;
    let mut f = pick_output(loaded.function, pick, false)?;
    let mut weights = loaded.defaults;
    if let Some(path) = defaults {
        let arrays = bind::npz_arrays("--defaults", path)?;
        for p in f.params() {
            if let Some((_, a)) = arrays.iter().find(|(n, _)| *n == p.name) {
                let t = jjt_ir::Tensor::from_array(a.clone());
                if t.ty() != p.ty {
                    return Err(CliError::Import(format!(
                        "input `{}` is {}, its value in {} is {}",
                        p.name,
                        p.ty,
                        path.display(),
                        t.ty()
                    )));
                }
                weights.retain(|(n, _)| *n != p.name);
                weights.push((p.name.clone(), t));
            }
        }
    }
    let names: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
    weights.retain(|(n, _)| names.contains(n));
    let npz = out.with_extension("npz");
    let file = npz.file_name().and_then(|n| n.to_str()).unwrap_or("weights.npz").to_string();
    for (n, _) in &weights {
        f.set_default(n, Some(file.clone()));
    }
    if !weights.is_empty() {
        let arrays: Vec<(String, jjt_npy::Array)> =
            weights.into_iter().map(|(n, t)| (n, t.into_array())).collect();
        let named: Vec<(&str, &jjt_npy::Array)> =
            arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
        jjt_npy::write_npz_file(&npz, &named)
            .map_err(|source| CliError::WriteNpy { path: npz.clone(), source })?;
    }
    std::fs::write(out, jjt_ir::text::print(&f))
        .map_err(|e| CliError::Import(format!("cannot write {}: {e}", out.display())))
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Dump(a) => dump::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Eval { model, inputs, output, backend } => {
            let f = load_selecting(&model, args::Precision::AsModel, &[&inputs])?;
            let args = bind::bind_named(&f, &inputs, "--in", args::Precision::AsModel)?;
            write_outputs(&f, backend.run_all(&f, &args, 8192)?, &output)
        }
        Command::Kernel { io, opts, tiles, output } => {
            let sel = [&io.wrt[..], &io.shared[..]];
            let f = load_selecting(&io.model, opts.precision, &sel)?;
            let f = pick_output(f, opts.pick.as_deref(), true)?;
            let (spec, bound) = bind::bind_kernel(
                &f,
                &io,
                &opts,
                jjt_ad::Form::Kernel,
                None,
                (None, bind::Missing::Refuse),
            )?;
            let args = bind::values(bound)?;
            if let Some(g) = &tiles.grid {
                let grid = grid::parse_grid(g)?;
                let dir = output.ok_or(CliError::Usage(
                    "--grid writes its blocks into a directory: give -o DIR",
                ))?;
                if opts.backend != Backend::Jit {
                    return Err(CliError::Usage("--grid needs --backend jit"));
                }
                let task = tiles.task.as_deref().unwrap_or("all");
                return grid::run(&f, &spec, &opts, &tiles, grid, task, &args, &dir);
            }
            let k = match (spec.batch, spec.examples, opts.backend) {
                (Some(batch), _, Backend::Jit) => {
                    tiles::run(&f, &spec, &opts, &tiles, batch, &args)?
                }
                _ => {
                    if tiles.rows.is_some() || tiles.cols.is_some() {
                        return Err(CliError::Usage(
                            "--rows/--cols need batched per-side inputs and --backend jit",
                        ));
                    }
                    let (g, note) = kernel_graph(&f, &spec, &opts)?;
                    if let Some(n) = note.filter(|_| opts.verbose) {
                        eprintln!("{n}");
                    }
                    opts.backend.run(&g, &args, opts.max_memory)?
                }
            };
            write_result(squeeze_example_axes(&f, &spec, k)?, output)
        }
        Command::Slurm { io, opts, slurm } => {
            let raw = std::env::args_os()
                .skip(2)
                .map(|a| a.into_string())
                .collect::<Result<Vec<String>, _>>()
                .map_err(|_| {
                    CliError::Usage("jjt slurm writes a shell script: its arguments must be UTF-8")
                })?;
            slurm::run(&io, &opts, &slurm, &raw)
        }
        Command::Import { model, output, defaults, pick } => {
            import(&model, &output, defaults.as_deref(), pick.as_deref())
        }
        Command::Merge { blocks, output } => {
            if let [dir] = blocks.as_slice()
                && std::path::Path::new(dir).join("manifest.json").is_file()
            {
                return grid::merge(std::path::Path::new(dir), &output);
            }
            let k = tiles::merge(&blocks)?;
            jjt_npy::write_file(&output, &k.into_array())
                .map_err(|source| CliError::WriteNpy { path: output, source })
        }
        Command::Apply { io, opts, v, output } => {
            let sel = [&io.wrt[..], &io.shared[..]];
            let f = load_selecting(&io.model, opts.precision, &sel)?;
            let f = pick_output(f, opts.pick.as_deref(), true)?;
            let (spec, bound) = bind::bind_kernel(
                &f,
                &io,
                &opts,
                jjt_ad::Form::Apply,
                Some(&v),
                (None, bind::Missing::Refuse),
            )?;
            let args = bind::values(bound)?;
            let a = optimized(&spec.apply(&f)?, opts.optimizer)?;
            write_result(opts.backend.run(&a, &args, opts.max_memory)?, output)
        }
        Command::Check { model, wrt, mut inputs, points, seed, range, pick } => {
            // `--wrt NAME=FILE` fixes the input at that file, as `--in NAME=FILE` does.
            let wrt = args::items("--wrt", &wrt)?;
            for it in &wrt {
                if let Some(file) = &it.file {
                    inputs.push(format!("{}={}", it.name, file.display()));
                }
            }
            let wrt: Vec<String> = wrt.into_iter().map(|it| it.name).collect();
            let f = load_selecting(&model, args::Precision::AsModel, &[&wrt, &inputs])?;
            let f = pick_output(f, pick.as_deref(), true)?;
            let f = jjt_ad::promote_f64(&f)?;
            let &[lo, hi] = range.as_slice() else {
                return Err(CliError::Usage("--range takes two numbers: --range LO,HI"));
            };
            check::run(&f, &wrt, &inputs, points, seed, (lo, hi))
        }
    }
}
