//! "Did you mean ...?": the closest known word to a misspelt one.

/// The candidate closest to `word` (case-insensitive edit distance), if it
/// is close enough to be a plausible typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = word.to_lowercase();
    let limit = (lower.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Edit distance counting a swap of two neighbours as one edit (typos like
/// `form` for `from`); words are capped so hostile input stays cheap.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let names = ["RUN", "COPY", "FROM", "WORKDIR"];
        assert_eq!(suggest("RUNN", names), Some("RUN".into()));
        assert_eq!(suggest("cpy", names), Some("COPY".into()));
        assert_eq!(suggest("WORKDIT", names), Some("WORKDIR".into()));
        assert_eq!(suggest("banana", names), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("form", "from"), 1);
    }
}
