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
