//! Rows grouped by equal text across the whole file — the one working set of the rules
//! that look across rows (who first holds a development number, who shares an ID
//! number). Grouped by sorting, digits as integers, not by hashing the text: a million
//! ID numbers group in 16 bytes a row and sort in parallel.

use rayon::slice::ParallelSliceMut;

/// Row indices grouped by equal key, each group in ascending row order. Groups of one
/// row are kept (a number's only holder is its first).
pub struct Groups {
    /// Row indices, group after group.
    order: Vec<u32>,
    /// Where each group starts in `order`, then `order.len()`.
    starts: Vec<u32>,
}

impl Groups {
    /// Groups the rows by their key; rows whose key is `None` are in no group.
    pub fn of<'a>(keys: impl Iterator<Item = Option<&'a str>>) -> Groups {
        // Text of at most 19 ASCII digits is equal exactly when its length and value are;
        // anything else (rare: letters, other scripts' digits) is compared as text.
        let mut digits: Vec<(u8, u64, u32)> = Vec::new();
        let mut text: Vec<(&'a str, u32)> = Vec::new();
        for (i, key) in keys.enumerate() {
            let Some(key) = key else { continue };
            match as_integer(key) {
                Some(n) => digits.push((key.len() as u8, n, i as u32)),
                None => text.push((key, i as u32)),
            }
        }
        digits.par_sort_unstable();
        text.par_sort_unstable();
        let mut order = Vec::with_capacity(digits.len() + text.len());
        let mut starts = Vec::new();
        for run in digits.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            starts.push(order.len() as u32);
            order.extend(run.iter().map(|r| r.2));
        }
        for run in text.chunk_by(|a, b| a.0 == b.0) {
            starts.push(order.len() as u32);
            order.extend(run.iter().map(|r| r.1));
        }
        starts.push(order.len() as u32);
        Groups { order, starts }
    }

    /// Each group's row indices, ascending.
    pub fn iter(&self) -> impl Iterator<Item = &[u32]> {
        self.starts
            .windows(2)
            .map(|w| &self.order[w[0] as usize..w[1] as usize])
    }
}

/// The value of 1 to 19 ASCII digits (leading zeros allowed: the length tells them apart).
fn as_integer(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::Groups;

    /// Keys in row order, and the groups expected (row indices).
    type Case = (&'static [Option<&'static str>], &'static [&'static [u32]]);

    #[test]
    fn equal_text_and_only_equal_text_groups() {
        let cases: &[Case] = &[
            (&[], &[]),
            (&[None, None], &[]),
            (&[Some("7")], &[&[0]]),
            // Leading zeros make other text: 012 ≠ 12.
            (&[Some("12"), Some("012"), Some("12")], &[&[0, 2], &[1]]),
            // Twenty digits are past u64; compared as text, still exactly.
            (
                &[
                    Some("12345678901234567890"),
                    Some("1"),
                    Some("12345678901234567890"),
                ],
                &[&[1], &[0, 2]],
            ),
            // Nineteen nines is the largest integer key.
            (
                &[Some("9999999999999999999"), Some("9999999999999999999")],
                &[&[0, 1]],
            ),
            // Letters and full-width digits are text; a gap of None rows keeps indices.
            (
                &[
                    Some("11010519491231002X"),
                    None,
                    Some("１２"),
                    Some("11010519491231002X"),
                    Some("12"),
                ],
                &[&[4], &[0, 3], &[2]],
            ),
        ];
        for (keys, want) in cases {
            let groups = Groups::of(keys.iter().copied());
            let mut got: Vec<Vec<u32>> = groups.iter().map(<[u32]>::to_vec).collect();
            let mut want: Vec<Vec<u32>> = want.iter().map(|g| g.to_vec()).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "keys {keys:?}");
        }
    }
}
