//! `jjt dump`: a model's graph at a pipeline stage, as text or Graphviz DOT, optimised with
//! its cost, split into its staged halves, or as Cranelift IR or machine code.

use jjt_ir::Function;

use crate::CliError;
use crate::args::{DumpArgs, Format, Stage, StrategyArg};
use crate::output::emit;
use crate::pipeline::{
    choose, jit_options, load_selecting, optimized, pick_output, stage_graphs, throughputs,
};

pub(crate) fn run(a: &DumpArgs) -> Result<(), CliError> {
    let (wrt, _) = a.target.names_only()?;
    // Differentiating needs one output; the model as written may have several.
    let one = !wrt.is_empty() && !matches!(a.stage, Stage::Traced);
    let sel = [&a.target.wrt[..], &a.target.shared[..]];
    let f = load_selecting(&a.model, a.opts.precision, &sel)?;
    let f = pick_output(f, a.opts.pick.as_deref(), one)?;
    // Only stages with two sides have per-side inputs.
    let of = a.of.unwrap_or(Stage::Kernel);
    let sided = match a.stage {
        Stage::Kernel | Stage::Apply | Stage::Staged => true,
        Stage::Optimized | Stage::Clif | Stage::Asm => matches!(of, Stage::Kernel | Stage::Apply),
        _ => false,
    };
    let note = if one && sided { a.target.check_sides(&f)? } else { None };
    dump(a, &f, &wrt)?;
    // Which inputs are shared, after the dump (so a failing dump prints one error only).
    if let Some(n) = note {
        eprintln!("{n}");
    }
    Ok(())
}

fn dump(a: &DumpArgs, f: &Function, wrt: &[String]) -> Result<(), CliError> {
    let DumpArgs { stage, format, target, of, print_after, stats, opts, output, .. } = a;
    let (stage, format, stats) = (*stage, *format, *stats);
    let of = of.unwrap_or(if wrt.is_empty() { Stage::Traced } else { Stage::Kernel });
    if matches!(of, Stage::Clif | Stage::Asm | Stage::Linearize | Stage::Optimized | Stage::Staged)
    {
        return Err(CliError::Usage("--of takes traced, jvp, vjp, kernel or apply"));
    }
    if matches!(stage, Stage::Optimized) {
        // With `--strategy auto`, the candidates and their predicted times head the dump.
        let mut out = String::new();
        let g = if matches!(of, Stage::Kernel) && matches!(opts.strategy, StrategyArg::Auto) {
            let mut spec = target.spec(f, opts)?;
            let choice = choose(&spec, f, opts)?;
            for c in &choice.candidates {
                out.push_str(&format!(
                    "# candidate {:4}: predicted {:.4} ms per call, flops/call {:.4e}{}\n",
                    match c.strategy {
                        jjt_ad::Strategy::Ntvp => "ntvp",
                        jjt_ad::Strategy::Jc => "jc",
                    },
                    c.price * 1e3,
                    c.cost.flops,
                    if c.strategy == choice.strategy { " (chosen)" } else { "" }
                ));
            }
            spec.strategy = choice.strategy;
            spec.kernel(f)?
        } else {
            stage_graphs(f, of, target, opts)?.remove(0)
        };
        // The graph after each run of the `--print-after` pass.
        let mut after: Vec<(String, Function)> = Vec::new();
        let (opt, reports) = jjt_opt::optimize(&g, |pass, h| {
            if *print_after == Some(pass) {
                after.push((pass.to_string(), h.clone()));
            }
        })
        .map_err(CliError::Optimize)?;
        let predicted =
            jjt_jit::predict_with(&opt, &jit_options(opts.max_memory), &throughputs()?)?;
        out.push_str(&format!(
            "# before: {}\n# after:  {}\n# predicted: {:.4} ms per call in {} steps (JIT)\n",
            jjt_opt::cost::cost(&g),
            jjt_opt::cost::cost(&opt),
            predicted.seconds() * 1e3,
            predicted.steps.len()
        ));
        if stats {
            for r in &reports {
                out.push_str(&format!(
                    "# pass {:8} {:8.3} ms  {} nodes  {}\n",
                    r.pass, r.ms, r.nodes, r.stats
                ));
            }
        }
        match format {
            // One picture: the graph after each run of the pass and the optimised one, a
            // cluster each.
            Format::Dot => {
                let mut all: Vec<&Function> = after.iter().map(|(_, h)| h).collect();
                all.push(&opt);
                out.push_str(&render(&all, format, a)?);
            }
            Format::Text => {
                for (pass, h) in &after {
                    out.push_str(&format!("# after {pass}\n{}\n", render(&[h], format, a)?));
                }
                out.push_str(&render(&[&opt], format, a)?);
            }
        }
        return emit(&out, output.as_deref());
    }
    if matches!(stage, Stage::Staged) {
        let g =
            optimized(&stage_graphs(f, Stage::Kernel, target, opts)?.remove(0), opts.optimizer)?;
        let spec = target.spec(f, opts)?;
        let flags: Vec<bool> = spec
            .layout(f, jjt_ad::Form::Kernel)?
            .iter()
            .map(|(_, role, _)| matches!(role, jjt_ad::Role::Shared(_)))
            .collect();
        let st = jjt_opt::stage::stage(&g, &flags).map_err(CliError::Stage)?;
        let mut out = match &st.prepare {
            Some(_) => "# prepare: run once per value of the shared inputs\n".to_string(),
            None => "# prepare: nothing depends on the shared inputs alone\n".to_string(),
        };
        match (&st.prepare, format) {
            // One picture, a cluster per function.
            (Some(p), Format::Dot) => out.push_str(&render(&[p, &st.call], format, a)?),
            (Some(p), Format::Text) => {
                out.push_str(&format!("{}\n", render(&[p], format, a)?));
                out.push_str("# per call: takes the prepared values as its last inputs\n");
                out.push_str(&render(&[&st.call], format, a)?);
            }
            (None, _) => {
                out.push_str("# per call: takes the prepared values as its last inputs\n");
                out.push_str(&render(&[&st.call], format, a)?);
            }
        }
        return emit(&out, output.as_deref());
    }
    if matches!(stage, Stage::Clif | Stage::Asm) {
        let g = optimized(&stage_graphs(f, of, target, opts)?.remove(0), opts.optimizer)?;
        let keep = jjt_jit::Options {
            keep_clif: matches!(stage, Stage::Clif),
            keep_asm: matches!(stage, Stage::Asm),
            ..Default::default()
        };
        let c = jjt_jit::compile_with(&g, keep)?;
        let text = c.clif().or(c.asm()).unwrap_or_default().to_string();
        return emit(&text, output.as_deref());
    }
    let graphs = stage_graphs(f, stage, target, opts)?;
    let refs: Vec<&Function> = graphs.iter().collect();
    emit(&render(&refs, format, a)?, output.as_deref())
}

/// The graphs as text (one after the other) or as one DOT digraph (a cluster per graph, the
/// `--around` neighbourhood only when asked).
fn render(gs: &[&Function], format: Format, a: &DumpArgs) -> Result<String, CliError> {
    match format {
        Format::Text => {
            if a.around.is_some() {
                return Err(CliError::Usage("--around draws pictures: add --format dot"));
            }
            Ok(gs.iter().map(|g| jjt_ir::text::print(g)).collect::<Vec<_>>().join("\n"))
        }
        Format::Dot => {
            let o = jjt_ir::dot::DotOptions {
                around: a.around.clone().map(|n| (n, a.depth)),
                ..Default::default()
            };
            Ok(jjt_ir::dot::to_dot_with(gs, &o)?)
        }
    }
}
