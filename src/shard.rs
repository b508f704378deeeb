//! `run --shard K/N`: which shard this process is (the flag, or a Slurm
//! array task, or a Kubernetes Indexed Job), and the deterministic,
//! cost-balanced partition of a run's workers into shards.
//!
//! The unit of a shard is a worker, one (model, framework) with every mode
//! and `--optimize` level the run times in it. Its expected cost is the
//! model's MACs x batch x (warm-up + timed iterations) x sessions. Workers
//! go to shards by LPT (longest processing time first): sorted by cost,
//! heaviest first (ties by model, then framework), each to the shard with
//! the least cost so far (ties to the lowest index). The largest shard is
//! then within (4/3 - 1/(3N)) of the best possible (Graham, 1969).

use anyhow::{bail, Context, Result};

use crate::record::{RunPlan, Shard, ShardPlan};

/// A shard and where it came from, for the line `run` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub shard: Shard,
    pub source: String,
}

/// `K/N` with 1 <= K <= N.
pub fn parse(text: &str) -> Result<Shard> {
    let bad = || anyhow::anyhow!("--shard: expected K/N with 1 <= K <= N, got '{text}'");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok(Shard { index: k, count: n })
}

/// A shard count of at least 1 from `what` (a flag or a variable).
fn count(text: &str, what: &str) -> Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => bail!("{what}: expected a shard count of at least 1, got '{text}'"),
    }
}

/// A non-negative whole number from variable `name`.
fn number(name: &str, text: &str) -> Result<usize> {
    text.trim()
        .parse()
        .with_context(|| format!("{name}: expected a whole number, got '{text}'"))
}

/// The shard of this process: `--shard K/N` where given; else a Slurm array
/// task (`SLURM_ARRAY_TASK_ID` counted from `SLURM_ARRAY_TASK_MIN` in steps
/// of `SLURM_ARRAY_TASK_STEP`, of `SLURM_ARRAY_TASK_COUNT`); else a
/// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, 0-based, of
/// `--shard-count` or `SPEEDBENCH_SHARD_COUNT`); else none. `env` reads a
/// variable (the process environment in `run`, a map in tests).
pub fn pick(
    flag: Option<&str>,
    count_flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Picked>> {
    if let Some(text) = flag {
        if count_flag.is_some() {
            bail!("--shard-count: give either --shard K/N or --shard-count N, not both");
        }
        return Ok(Some(Picked {
            shard: parse(text)?,
            source: "--shard".into(),
        }));
    }
    // the count given besides an index: the flag, else the variable (read
    // only where an index needs it)
    let given = || -> Result<Option<(usize, String)>> {
        Ok(match (count_flag, env("SPEEDBENCH_SHARD_COUNT")) {
            (Some(c), _) => Some((count(c, "--shard-count")?, format!("--shard-count {c}"))),
            (None, Some(c)) => Some((
                count(&c, "SPEEDBENCH_SHARD_COUNT")?,
                format!("SPEEDBENCH_SHARD_COUNT={c}"),
            )),
            (None, None) => None,
        })
    };
    if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
        return slurm(&id, env, &given).map(Some);
    }
    if let Some(index) = env("JOB_COMPLETION_INDEX") {
        let (n, from) = given()?.with_context(|| {
            format!(
                "JOB_COMPLETION_INDEX={index} (a Kubernetes Indexed Job) needs the shard count: \
                 pass --shard-count N or set SPEEDBENCH_SHARD_COUNT (the Job's completions), \
                 or --shard 1/1 to run everything"
            )
        })?;
        let i = number("JOB_COMPLETION_INDEX", &index)?;
        if i >= n {
            bail!("JOB_COMPLETION_INDEX={index} is not below the shard count {n} ({from})");
        }
        return Ok(Some(Picked {
            shard: Shard {
                index: i + 1,
                count: n,
            },
            source: format!("Kubernetes Indexed Job: JOB_COMPLETION_INDEX={index}, {from}"),
        }));
    }
    if count_flag.is_some() {
        bail!(
            "--shard-count: needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or \
             SLURM_ARRAY_TASK_ID to pick the shard; or give --shard K/N"
        );
    }
    Ok(None)
}

/// The shard of a Slurm array task: the task's position among
/// min, min + step, ... (task ids need not start at 0 or 1).
fn slurm(
    id_text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    given: &dyn Fn() -> Result<Option<(usize, String)>>,
) -> Result<Picked> {
    let id = number("SLURM_ARRAY_TASK_ID", id_text)?;
    let min = env("SLURM_ARRAY_TASK_MIN")
        .map(|m| number("SLURM_ARRAY_TASK_MIN", &m))
        .transpose()?;
    let step = env("SLURM_ARRAY_TASK_STEP")
        .map(|s| number("SLURM_ARRAY_TASK_STEP", &s))
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let (n, count_from) = match env("SLURM_ARRAY_TASK_COUNT") {
        Some(c) => (
            count(&c, "SLURM_ARRAY_TASK_COUNT")?,
            format!("SLURM_ARRAY_TASK_COUNT={c}"),
        ),
        None => given()?.with_context(|| {
            format!(
                "SLURM_ARRAY_TASK_ID={id_text} is set but SLURM_ARRAY_TASK_COUNT is not: \
                 pass --shard-count N or --shard K/N (--shard 1/1 runs everything)"
            )
        })?,
    };
    let from = min.unwrap_or(0);
    let mut source = format!("Slurm array task: SLURM_ARRAY_TASK_ID={id_text}");
    if let Some(m) = min {
        source.push_str(&format!(", SLURM_ARRAY_TASK_MIN={m}"));
    }
    if step > 1 {
        source.push_str(&format!(", SLURM_ARRAY_TASK_STEP={step}"));
    }
    source.push_str(&format!(", {count_from}"));
    let position = id
        .checked_sub(from)
        .filter(|d| d % step == 0)
        .map(|d| d / step)
        .filter(|p| *p < n);
    let Some(p) = position else {
        bail!("{source}: the task id is not one of {n} tasks from {from} in steps of {step}; use --shard K/N");
    };
    Ok(Picked {
        shard: Shard {
            index: p + 1,
            count: n,
        },
        source,
    })
}

/// LPT: the 0-based shard of each item, `count` shards. Items are
/// (stable key, expected cost); the result does not depend on their order.
pub fn partition<K: Ord>(items: &[(K, u128)], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        items[b]
            .1
            .cmp(&items[a].1)
            .then(items[a].0.cmp(&items[b].0))
    });
    let mut load = vec![0u128; count];
    let mut shard_of = vec![0; items.len()];
    for i in order {
        let lightest = (0..count).min_by_key(|&s| (load[s], s)).unwrap_or(0);
        load[lightest] += items[i].1;
        shard_of[i] = lightest;
    }
    shard_of
}

/// Every (model, framework) worker of `plan` with its expected cost;
/// `macs` gives a model's conv + fc MACs per image at the plan's size.
pub fn costs(
    plan: &RunPlan,
    macs: &dyn Fn(&str) -> Result<u64>,
) -> Result<Vec<((String, String), u128)>> {
    let passes = plan.warmup * plan.processes.max(1) + plan.iters;
    // every batch of every setting, each mode
    let images: usize = plan.batch.iter().sum();
    let per_image =
        (images * passes * plan.modes.len() * plan.optimize.len() * plan.precision.len()) as u128;
    let mut out = Vec::new();
    for model in &plan.models {
        let m = u128::from(macs(model)?) * per_image;
        for framework in &plan.frameworks {
            out.push(((model.clone(), framework.clone()), m));
        }
    }
    Ok(out)
}

/// The workers of `picked`'s shard, in run order, and its share of the
/// expected cost of the whole run (0 to 1).
pub fn assign(
    plan: &RunPlan,
    picked: Picked,
    macs: &dyn Fn(&str) -> Result<u64>,
) -> Result<(ShardPlan, f64)> {
    let items = costs(plan, macs)?;
    let shard_of = partition(&items, picked.shard.count);
    let mine = picked.shard.index - 1;
    let total: u128 = items.iter().map(|i| i.1).sum();
    let (mut workers, mut cost) = (Vec::new(), 0u128);
    for ((key, c), s) in items.into_iter().zip(shard_of) {
        if s == mine {
            workers.push(key);
            cost += c;
        }
    }
    let share = if total == 0 {
        0.0
    } else {
        cost as f64 / total as f64
    };
    Ok((
        ShardPlan {
            shard: picked.shard,
            source: picked.source,
            workers,
        },
        share,
    ))
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
