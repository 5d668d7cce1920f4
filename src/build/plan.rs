//! Which stages a build runs and in what order: the target stage (the last
//! one unless `--target`) and every stage it needs through `FROM stage`,
//! `COPY --from=stage|index` and `RUN --mount=from=stage`.

use std::collections::BTreeSet;

use crate::containerfile::{Containerfile, Instruction};

/// Stages to build, in file order, and the ones skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub target: usize,
    pub needed: Vec<usize>,
    pub skipped: Vec<usize>,
}

/// The display name of stage `i`: its `AS` name or its index.
pub fn stage_label(cf: &Containerfile, i: usize) -> String {
    cf.stages[i].name.clone().unwrap_or_else(|| i.to_string())
}

/// The stage a `FROM`/`--from` word names among stages before `before`.
pub fn find_stage(cf: &Containerfile, word: &str, before: usize) -> Option<usize> {
    let lower = word.to_ascii_lowercase();
    if let Some(i) = cf.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(i);
    }
    word.parse::<usize>().ok().filter(|i| *i < before)
}

/// `expand_from` expands a FROM image word with the global ARGs.
pub fn plan(
    cf: &Containerfile,
    target: Option<&str>,
    expand_from: &dyn Fn(&str) -> String,
) -> Result<Plan, String> {
    if cf.stages.is_empty() {
        return Err("the Containerfile has no FROM instruction".to_string());
    }
    let target = match target {
        None => cf.stages.len() - 1,
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            cf.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(lower.as_str()))
                .ok_or_else(|| {
                    let names: Vec<String> =
                        cf.stages.iter().filter_map(|s| s.name.clone()).collect();
                    format!(
                        "target stage {name:?} not found; the Containerfile names: {}",
                        if names.is_empty() {
                            "no stages".to_string()
                        } else {
                            names.join(", ")
                        }
                    )
                })?
        }
    };
    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        for dep in dependencies(cf, i, expand_from) {
            todo.push(dep);
        }
    }
    let skipped = (0..cf.stages.len())
        .filter(|i| !needed.contains(i))
        .collect();
    Ok(Plan {
        target,
        needed: needed.into_iter().collect(),
        skipped,
    })
}

/// The earlier stages stage `i` reads from.
pub fn dependencies(
    cf: &Containerfile,
    i: usize,
    expand_from: &dyn Fn(&str) -> String,
) -> Vec<usize> {
    let stage = &cf.stages[i];
    let mut deps = Vec::new();
    if let Some(d) = find_stage(cf, &expand_from(&stage.from.image), i) {
        deps.push(d);
    }
    let mut from_word = |from: &str| {
        if from.contains('$') {
            // `--from=$NAME` may name a stage through the stage's own ARG or
            // ENV, known only while it runs: every earlier stage may be it.
            deps.extend(0..i);
        } else if let Some(d) = find_stage(cf, &expand_from(from), i) {
            deps.push(d);
        }
    };
    for inst in &stage.instructions {
        match inst {
            Instruction::Copy(c) => {
                if let Some(from) = &c.from {
                    from_word(from);
                }
            }
            Instruction::Run(r) => {
                for m in &r.mounts {
                    if let Some(from) = &m.from {
                        from_word(from);
                    }
                }
            }
            _ => {}
        }
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerfile::parse;

    fn same(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn target_pulls_in_only_what_it_needs() {
        let cf = parse(
            "FROM scratch AS a\nFROM scratch AS b\nCOPY --from=a / /\nFROM scratch AS c\nFROM b AS d\n",
            "Containerfile",
        )
        .unwrap();
        let p = plan(&cf, Some("d"), &same).unwrap();
        assert_eq!(p.needed, vec![0, 1, 3]);
        assert_eq!(p.skipped, vec![2]);
        let p = plan(&cf, None, &same).unwrap();
        assert_eq!(p.target, 3);
    }

    #[test]
    fn unknown_target_lists_the_stages() {
        let cf = parse("FROM scratch AS a\n", "Containerfile").unwrap();
        let err = plan(&cf, Some("nope"), &same).unwrap_err();
        assert!(err.contains("\"nope\"") && err.contains("a"), "{err}");
    }

    #[test]
    fn copy_from_by_index() {
        let cf = parse(
            "FROM scratch\nFROM scratch AS x\nCOPY --from=0 / /\n",
            "Containerfile",
        )
        .unwrap();
        assert_eq!(plan(&cf, None, &same).unwrap().needed, vec![0, 1]);
    }
}
