//! Column alignment as buildah's output writer does it (Go's `tabwriter`
//! with a padding of 3 spaces): cells end at a `\t`, each column is as
//! wide as its widest tab-terminated cell plus 3, and the last cell of a
//! line is printed as is.

/// Spaces after the widest cell of a column (buildah's tabwriter padding).
const PADDING: usize = 3;

/// Aligns `lines` whose cells are separated by `\t`. A line without a tab
/// is printed unchanged.
pub fn tabulate<S: AsRef<str>>(lines: &[S]) -> String {
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.as_ref().split('\t').collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        // Only cells a tab terminates count: the last one is free-standing.
        for (i, cell) in row.iter().take(row.len().saturating_sub(1)).enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] + PADDING - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// The header line of a `table` template: each `{{.Field}}` becomes the
/// column title `title` gives it.
pub fn table_header(template: &str, title: fn(&str) -> String) -> String {
    let re = regex::Regex::new(r"\{\{-?\s*\.(\w+)\s*-?\}\}").expect("constant regex");
    re.replace_all(template, |c: &regex::Captures| title(&c[1]))
        .into_owned()
}

/// buildah's `--format` makes every space of a template a column break
/// (its output writer swaps them for tabs). Spaces inside `{{ … }}` stay:
/// there they separate a function's arguments.
pub fn columns_of(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut depth = 0usize;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") {
            depth += 1;
            out.push_str("{{");
            rest = &rest[2..];
            continue;
        }
        if rest.starts_with("}}") && depth > 0 {
            depth -= 1;
            out.push_str("}}");
            rest = &rest[2..];
            continue;
        }
        out.push(if c == ' ' && depth == 0 { '\t' } else { c });
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_spaces_become_columns_outside_actions() {
        assert_eq!(
            columns_of("{{.Name}} {{printf \"%s %s\" .A .B}}|x y"),
            "{{.Name}}\t{{printf \"%s %s\" .A .B}}|x\ty"
        );
    }

    #[test]
    fn columns_are_widest_cell_plus_three() {
        let out = tabulate(&[
            "REPOSITORY\tTAG\tSIZE",
            "localhost/busybox\tlatest\t2.13 MB",
        ]);
        assert_eq!(
            out,
            "REPOSITORY          TAG      SIZE\nlocalhost/busybox   latest   2.13 MB\n"
        );
    }

    #[test]
    fn lines_without_tabs_are_unchanged() {
        assert_eq!(tabulate(&["a b", "c"]), "a b\nc\n");
        assert_eq!(tabulate::<&str>(&[]), "");
    }
}
