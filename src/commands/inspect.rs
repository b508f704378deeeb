//! The commands about one model: its counts, its ONNX export, one forward
//! pass, and the frameworks' agreement on its logits.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::say;
use crate::cli::Format;
use crate::frameworks::{self, PrepareOptions};
use crate::graph::analysis::{analyse, Analysis};
use crate::graph::onnx;
use crate::record::{Device, Mode, Optimize, Precision};
use crate::report::rows::render_rows;
use crate::zoo::{self, Catalog};

#[derive(Serialize, tabled::Tabled)]
struct ModelRow {
    name: String,
    #[tabled(rename = "params")]
    params: u64,
    #[tabled(rename = "MACs")]
    macs: u64,
    #[tabled(rename = "span MACs")]
    span_macs: u64,
    #[tabled(rename = "ideal par. speedup", display_with = "two")]
    ideal_speedup: f64,
    #[tabled(rename = "max parallel branches")]
    max_parallel_branches: usize,
}

fn two(v: &f64) -> String {
    format!("{v:.2}")
}

pub fn models(catalog: &Catalog, size: usize, format: Format) -> Result<i32> {
    let mut all: Vec<Analysis> = Vec::new();
    for name in catalog.names() {
        let spec = catalog.find(&name)?;
        // an imported model at the size it was exported for
        let at = zoo::size_for(spec, size);
        // a model not defined at this size is left out, with the reason
        match zoo::build(spec, at) {
            Ok(g) => all.push(analyse(&g)),
            Err(e) => eprintln!("note: {name} skipped: {e:#}"),
        }
    }
    let rows: Vec<ModelRow> = all
        .iter()
        .map(|a| ModelRow {
            name: match a.size == size {
                true => a.name.clone(),
                false => format!("{} ({} px)", a.name, a.size),
            },
            params: a.params,
            macs: a.macs,
            span_macs: a.span_macs,
            ideal_speedup: a.ideal_speedup,
            max_parallel_branches: a.max_parallel_branches,
        })
        .collect();
    let out = match format {
        Format::Json => serde_json::to_string_pretty(&all)?,
        f => render_rows(&rows, f.into())?,
    };
    say(out.trim_end());
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
pub fn infer(
    catalog: &Catalog,
    framework: &str,
    model: &str,
    weights: Option<&Path>,
    input: &Path,
    output: &Path,
    device: Device,
    mode: Mode,
    (optimize, precision): (Optimize, Precision),
    verbose: bool,
) -> Result<i32> {
    let fw = frameworks::by_name(framework)?;
    let x = crate::io::read_input(input, None)?;
    let size = x.shape()[2];
    if x.shape()[3] != size {
        bail!(
            "{}: input is {}x{}; speedbench builds square graphs",
            input.display(),
            size,
            x.shape()[3]
        );
    }
    let loaded = zoo::load(catalog, model, size, weights, 0)?;
    let cores = crate::record::env::cores();
    let mut opts = PrepareOptions::new(device, mode, optimize, cores, cores, verbose);
    opts.precision = precision;
    let mut prepared = frameworks::prepare(fw.as_ref(), &loaded.graph, &loaded.weights, &opts)?;
    let y = prepared.run(&x)?;
    crate::io::write_logits(output, &y)?;
    eprintln!(
        "{model} on {framework} {device} ({mode}, --optimize {optimize}, --precision {precision}): logits {:?} -> {}",
        y.shape(),
        output.display()
    );
    Ok(0)
}

/// An imported model's own ONNX file run as it is (`infer --original`).
pub fn infer_original(
    catalog: &Catalog,
    framework: &str,
    model: &str,
    input: &Path,
    output: &Path,
) -> Result<i32> {
    let spec = catalog.find(model)?;
    let Some(path) = spec.onnx_file() else {
        bail!("--original: model '{model}' is not an imported one; it has no ONNX file of its own");
    };
    let x = crate::io::read_input(input, None)?;
    let imported = zoo::imported(spec)?;
    crate::frameworks::check_input(imported.graph.input(), &x)
        .with_context(|| format!("--input {}", input.display()))?;
    let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let fw = frameworks::by_name(framework)?;
    let y = fw.run_onnx_file(&bytes, &x, imported.batch)?;
    crate::io::write_logits(output, &y)?;
    eprintln!(
        "{model}'s own file {} in {framework}: logits {:?} -> {}",
        path.display(),
        y.shape(),
        output.display()
    );
    Ok(0)
}

pub fn export(
    catalog: &Catalog,
    model: &str,
    weights: Option<&Path>,
    size: usize,
    out: &Path,
    save_weights: Option<&Path>,
) -> Result<i32> {
    let loaded = zoo::load(catalog, model, size, weights, 0)?;
    let bytes = onnx::to_onnx(&loaded.graph, &loaded.weights)?;
    std::fs::write(out, &bytes)
        .with_context(|| format!("--out {}: cannot write", out.display()))?;
    if let Some(p) = save_weights {
        loaded.weights.save(p)?;
    }
    eprintln!(
        "{model} ({size}x{size}, dynamic batch) -> {} ({} bytes)",
        out.display(),
        bytes.len()
    );
    Ok(0)
}

pub fn verify(catalog: &Catalog, args: &crate::cli::VerifyArgs, verbose: bool) -> Result<i32> {
    let crate::cli::VerifyArgs {
        ref models,
        frameworks: ref asked,
        size,
        batch,
        ref weights,
        tolerance,
        device,
        optimize,
        precision,
        format,
    } = *args;
    let (weights, device) = (weights.clone(), Device::from(device));
    if batch == 0 || size == 0 {
        bail!("--batch and --size must be at least 1");
    }
    if tolerance.is_nan() || tolerance <= 0.0 {
        bail!("--tolerance must be a positive number, got {tolerance}");
    }
    let known = catalog.names();
    let models: Vec<String> = if models.is_empty() || models.iter().any(|m| m == "all") {
        known.clone()
    } else {
        for m in models {
            if !known.contains(m) {
                bail!(
                    "--model: unknown model '{m}' (expected one of: {}, all)",
                    known.join(", ")
                );
            }
            // a model asked for by name must be defined at this size (an
            // imported one at its own)
            let spec = catalog.find(m)?;
            zoo::build(spec, zoo::size_for(spec, size))?;
        }
        models.to_vec()
    };
    if weights.is_some() && models.len() != 1 {
        bail!("--weights needs exactly one --model");
    }
    let frameworks: Vec<String> = if asked.is_empty() || asked.iter().any(|f| f == "all") {
        frameworks::installed()
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        for f in asked {
            frameworks::worker_exe(f).map_err(|e| anyhow::anyhow!("--framework: {e}"))?;
        }
        asked.to_vec()
    };
    let opts = crate::verify::VerifyOptions {
        catalog,
        models,
        frameworks,
        size,
        batch,
        weights,
        tolerance,
        device,
        optimize,
        precision,
        verbose,
    };
    let rows = crate::verify::verify(&opts)?;
    let out = render_rows(&rows, format.into())?;
    say(out.trim_end());
    let bad = rows.iter().filter(|r| !r.ok).count();
    if bad > 0 {
        eprintln!("verify: {bad} comparison(s) beyond the tolerance of {precision}");
        return Ok(1);
    }
    match precision.relative_l2_tolerance() {
        Some(t) => eprintln!(
            "verify: {} comparison(s) at {precision} within relative L2 {t:e} with every top-1 class kept",
            rows.len()
        ),
        None => eprintln!("verify: {} comparison(s) within {tolerance:e}", rows.len()),
    }
    Ok(0)
}

/// `speedbench cuda-libs`: loads `framework`'s CUDA stack (and ONNX
/// Runtime's CUDA provider where SPEEDBENCH_PROBE_PROVIDER is set, as
/// ci/gpu-libs.sh does) and checks that every CUDA library mapped came from
/// the runtime's own environment at its CUDA major, none loaded twice.
pub fn cuda_libs(framework: &str) -> Result<i32> {
    use crate::frameworks::cuda_stack;
    let fw = frameworks::by_name(framework)?;
    let (site, major, stack) = fw.cuda_stack()?;
    if std::env::var_os("SPEEDBENCH_PROBE_PROVIDER").is_some() {
        if let Some(said) = fw.probe_cuda_provider()? {
            eprintln!("{framework}: {said}");
        }
    }
    let stack: Vec<&str> = stack.iter().map(String::as_str).collect();
    let resolved =
        cuda_stack::check_resolved(&cuda_stack::mapped_libraries()?, &site, major, Some(&stack))
            .with_context(|| format!("{framework}'s CUDA libraries"))?;
    for r in &resolved {
        let major = r.major.map_or("-".into(), |m| m.to_string());
        println!("{}\t{}\t{major}", r.name, r.path.display());
    }
    eprintln!(
        "{framework}: {} CUDA libraries, all from {}, CUDA {major}; no library loaded twice",
        resolved.len(),
        site.display()
    );
    Ok(0)
}
