//! `jjt dump`: a model's graph at a pipeline stage, as text or Graphviz DOT, optimised with
//! its cost, split into its staged halves, or as Cranelift IR or machine code.

use jjt_ir::Function;

use crate::CliError;
use crate::args::{DumpArgs, Format, Stage, StrategyArg};
use crate::output::emit;
use crate::pipeline::{
    choose, jit_options, load, optimized, pick_output, stage_graphs, throughputs,
};

pub(crate) fn run(a: &DumpArgs) -> Result<(), CliError> {
    let (wrt, _) = a.target.names_only()?;
    // Differentiating needs one output; the model as written may have several.
    let one = !wrt.is_empty() && !matches!(a.stage, Stage::Traced);
    let f = pick_output(load(&a.model, a.opts.precision)?, a.opts.pick.as_deref(), one)?;
    let note = if one { a.target.check_sides(&f)? } else { None };
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
            let mut spec = target.spec(opts)?;
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
        let mut text = String::new();
        let (opt, reports) = jjt_opt::optimize(&g, |pass, h| {
            if *print_after == Some(pass) {
                text.push_str(&format!("# after {pass}\n{}\n", render(h, format)));
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
        out.push_str(&text);
        out.push_str(&render(&opt, format));
        return emit(&out, output.as_deref());
    }
    if matches!(stage, Stage::Staged) {
        let g =
            optimized(&stage_graphs(f, Stage::Kernel, target, opts)?.remove(0), opts.optimizer)?;
        let spec = target.spec(opts)?;
        let flags: Vec<bool> = spec
            .layout(f, jjt_ad::Form::Kernel)?
            .iter()
            .map(|(_, role, _)| matches!(role, jjt_ad::Role::Shared(_)))
            .collect();
        let st = jjt_opt::stage::stage(&g, &flags).map_err(CliError::Stage)?;
        let mut out = match &st.prepare {
            Some(p) => format!(
                "# prepare: run once per value of the shared inputs\n{}\n",
                render(p, format)
            ),
            None => "# prepare: nothing depends on the shared inputs alone\n".to_string(),
        };
        out.push_str("# per call: takes the prepared values as its last inputs\n");
        out.push_str(&render(&st.call, format));
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
    let text: Vec<String> = graphs.iter().map(|g| render(g, format)).collect();
    emit(&text.join("\n"), output.as_deref())
}

fn render(g: &Function, format: Format) -> String {
    match format {
        Format::Text => jjt_ir::text::print(g),
        Format::Dot => jjt_ir::dot::to_dot(g),
    }
}
