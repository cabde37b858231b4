//! Text normalisation shared by the Rust side (headers, organisation names) so it agrees
//! exactly with the polars expressions of `normalise` (SPEC §4).

use unicode_normalization::UnicodeNormalization;

/// Zero-width characters removed before any comparison.
pub const ZERO_WIDTH: [char; 5] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

/// NFKC, zero-width characters removed, trimmed. The same as `normalise::text` in polars.
pub fn normalise(s: &str) -> String {
    let nfkc: String = s.nfkc().filter(|c| !ZERO_WIDTH.contains(c)).collect();
    nfkc.trim().to_string()
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

#[cfg(test)]
mod tests {
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
    }
}
