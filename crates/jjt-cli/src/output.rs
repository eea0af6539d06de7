//! Results on standard output or in files: tensors as text, `.npy` files, a closed pipe.

use std::path::{Path, PathBuf};

use jjt_ir::Tensor;

use crate::CliError;

pub(crate) fn write_result(y: Tensor, output: Option<PathBuf>) -> Result<(), CliError> {
    match output {
        Some(path) => jjt_npy::write_file(&path, &y.into_array())
            .map_err(|source| CliError::WriteNpy { path, source }),
        None => emit(&format_tensor(&y), None),
    }
}

/// Every output of the model `f`: printed (each under a `# output K: NAME` line when there
/// are several), or written to `files`: one `.npy` per output in order, or every output into
/// one `.npz` archive (members named after the outputs).
pub(crate) fn write_outputs(
    f: &jjt_ir::Function,
    ys: Vec<Tensor>,
    files: &[PathBuf],
) -> Result<(), CliError> {
    let names = f.output_names();
    let npz = files.len() == 1 && files[0].extension().is_some_and(|e| e == "npz");
    if npz {
        let arrays: Vec<jjt_npy::Array> = ys.into_iter().map(Tensor::into_array).collect();
        let named: Vec<(&str, &jjt_npy::Array)> =
            names.iter().map(String::as_str).zip(arrays.iter()).collect();
        let path = files[0].clone();
        return jjt_npy::write_npz_file(&path, &named)
            .map_err(|source| CliError::WriteNpy { path, source });
    }
    if !files.is_empty() && files.len() != ys.len() {
        return Err(CliError::OutputFiles {
            count: ys.len(),
            outputs: crate::pipeline::list_outputs(f),
            given: files.len(),
        });
    }
    if files.is_empty() {
        let several = ys.len() > 1;
        let mut text = String::new();
        for (k, y) in ys.iter().enumerate() {
            if several {
                text.push_str(&format!("# output {k}: {}\n", names[k]));
            }
            text.push_str(&format_tensor(y));
        }
        return emit(&text, None);
    }
    for (y, path) in ys.into_iter().zip(files) {
        jjt_npy::write_file(path, &y.into_array())
            .map_err(|source| CliError::WriteNpy { path: path.clone(), source })?;
    }
    Ok(())
}

/// Write to standard output. A reader that has gone away (a closed pipe) ends the program with
/// status 0; another write error is reported and ends it with status 1.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

pub(crate) fn emit(text: &str, output: Option<&Path>) -> Result<(), CliError> {
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|source| CliError::Write { path: path.to_path_buf(), source }),
        None => {
            write_out(format_args!("{text}"));
            Ok(())
        }
    }
}

/// A tensor as text: its type, then the values, one line per last-axis row.
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
