//! Text normalisation shared by the Rust side (headers, organisation names) so it agrees
//! exactly with the polars expressions of `normalise` (SPEC §4).

use unicode_normalization::UnicodeNormalization;

/// Zero-width characters removed before any comparison.
pub const ZERO_WIDTH: [char; 5] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

/// NFKC, zero-width characters removed, trimmed: what `normalise::text` applies to every
/// cell.
pub fn normalise(s: &str) -> String {
    normalise_cow(s).into_owned()
}

/// [`normalise`] without copying what is already normal: ASCII text (NFKC leaves it as
/// it is) and text that is quickly known to be NFKC without zero-width characters are
/// only trimmed — most cells of a roster.
pub fn normalise_cow(s: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    use unicode_normalization::{IsNormalized, is_nfkc_quick};
    // ASCII and CJK unified ideographs (most of a roster: names, organisations) are
    // NFKC as they are, without combining marks; anything else asks the tables.
    let stable = |c: char| c.is_ascii() || ('\u{4E00}'..='\u{9FFF}').contains(&c);
    if s.chars().all(stable)
        || (is_nfkc_quick(s.chars()) == IsNormalized::Yes && !s.contains(ZERO_WIDTH))
    {
        return Cow::Borrowed(s.trim());
    }
    let nfkc: String = s.nfkc().filter(|c| !ZERO_WIDTH.contains(c)).collect();
    Cow::Owned(nfkc.trim().to_string())
}

/// How a column's text is shaped after [`normalise`] (SPEC §4), in the same pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Trimmed only.
    Trimmed,
    /// Inner runs of white space collapsed to one space (names, organisation names).
    Collapsed,
    /// Every white space removed (codes, numbers, enumerations).
    Compact,
    /// Compact and upper case (ID numbers: a trailing `x` is `X`).
    Upper,
    /// Compact without `-`, `(` and `)` (phone numbers).
    Phone,
}

/// One cell through [`normalise`] and its [`Shape`]; `None` when nothing is left.
/// Borrows the input when nothing changes, which is most cells of a roster.
pub fn shape(s: &str, shape: Shape) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    let t = normalise_cow(s);
    if t.is_empty() {
        return None;
    }
    let changed = |t: &str| -> Option<String> {
        match shape {
            Shape::Trimmed => None,
            Shape::Collapsed => {
                let mut prev_space = false;
                let needs = t.chars().any(|c| {
                    let bad = c.is_whitespace() && (c != ' ' || prev_space);
                    prev_space = c.is_whitespace();
                    bad
                });
                needs.then(|| collapse_spaces(t))
            }
            Shape::Compact => t
                .contains(char::is_whitespace)
                .then(|| t.chars().filter(|c| !c.is_whitespace()).collect()),
            Shape::Upper => {
                let compact: Cow<'_, str> = if t.contains(char::is_whitespace) {
                    Cow::Owned(t.chars().filter(|c| !c.is_whitespace()).collect())
                } else {
                    Cow::Borrowed(t)
                };
                let lower = if compact.is_ascii() {
                    compact.bytes().any(|b| b.is_ascii_lowercase())
                } else {
                    compact.to_uppercase() != *compact
                };
                match (lower, compact) {
                    (true, c) => Some(c.to_uppercase()),
                    (false, Cow::Owned(c)) => Some(c),
                    (false, Cow::Borrowed(_)) => None,
                }
            }
            Shape::Phone => t
                .contains(|c: char| c.is_whitespace() || matches!(c, '-' | '(' | ')'))
                .then(|| {
                    t.chars()
                        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')'))
                        .collect()
                }),
        }
    };
    Some(match changed(&t) {
        Some(new) => Cow::Owned(new),
        None => t,
    })
}

/// Organisation names: [`normalise`] with inner runs of white space collapsed to one space.
pub fn normalise_org(s: &str) -> String {
    collapse_spaces(&normalise(s))
}

/// Collapses runs of white space to a single ASCII space.
pub fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Headers as admins write them: `*姓名`, `姓名（必填）`, ` 身份证 号码 `, full-width.
pub fn normalise_header(s: &str) -> String {
    let n = normalise(s);
    let n = n
        .replace("(必填)", "")
        .replace("(选填)", "")
        .replace("(可选)", "")
        .replace("必填", "");
    n.chars()
        .filter(|c| !c.is_whitespace() && *c != '*' && *c != ':')
        .collect()
}

/// Masks the middle of an identifier for logs (SPEC §10): `440308********1512`.
pub fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let keep = if chars.len() >= 11 { 3 } else { 1 };
    let head: String = chars[..keep].iter().collect();
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 2 * keep))
}

/// [`mask`] applied to every run of 11 or more digits (an ID number, with its check
/// character, or a phone number) inside a text: for what is stored or logged beside
/// personal data, such as a finding's message that names a derived ID number.
pub fn mask_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().filter(char::is_ascii_digit).count() >= 11 {
            out.push_str(&mask(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() || (matches!(c, 'X' | 'x') && !run.is_empty()) {
            run.push(c);
            if !c.is_ascii_digit() {
                flush(&mut run, &mut out);
            }
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_fast_path_gives_what_full_normalisation_gives() {
        use unicode_normalization::UnicodeNormalization;
        let slow = |s: &str| -> String {
            let nfkc: String = s.nfkc().filter(|c| !ZERO_WIDTH.contains(c)).collect();
            nfkc.trim().to_string()
        };
        for s in [
            "  张三 ",
            "4401\u{200B}0320050101001X",
            "１３８００１３８０００",
            "\u{3000}共青团员\u{3000}",
            "ＡＢＣ （２）班",
            "e\u{301}",
            "\u{FEFF}汉族",
            "plain ascii\t",
            "",
            "\u{2060}",
        ] {
            assert_eq!(normalise_cow(s), slow(s), "{s:?}");
        }
    }

    use super::*;

    #[test]
    fn headers_normalise_as_admins_write_them() {
        for (raw, want) in [
            ("*姓名", "姓名"),
            ("姓名（必填）", "姓名"),
            (" 身份证 号码 ", "身份证号码"),
            ("是否同级党委（支部）成员", "是否同级党委(支部)成员"),
            ("\u{200B}民族*", "民族"),
            ("ＡＢ", "AB"),
        ] {
            assert_eq!(normalise_header(raw), want, "{raw}");
        }
    }

    #[test]
    fn org_names_and_masks() {
        assert_eq!(
            normalise_org("  某某大学 （团委）\u{200B} "),
            "某某大学 (团委)"
        );
        assert_eq!(normalise_org("A\u{3000}\u{3000}B"), "A B");
        assert_eq!(mask("440308199901101512"), "440************512");
        assert_eq!(mask("13800138000"), "138*****000");
        assert_eq!(mask("abc"), "***");
        assert_eq!(
            mask_numbers("对应的18位号码为 44030519900101123X，手机 13800138000；第12行"),
            "对应的18位号码为 440************23X，手机 138*****000；第12行"
        );
    }
}
