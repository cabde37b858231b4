//! Normalisation (SPEC §4) as polars expressions over whole columns: NFKC, zero-width
//! characters, trimming, enumerations mapped through their synonyms, dates parsed into
//! year / month / day. The uploaded text stays in `raw.*` for the reports.

use std::borrow::Cow;

use polars::prelude::*;
use schemas::{Field, Kind, Template, Vocabulary};

use crate::columns::col_in;
use crate::columns::col_raw;
use crate::columns::col_val;
use crate::text::{self, Shape};

/// NFKC, zero-width removed, trimmed, shaped; empty → null: [`text::shape`] over the
/// column. Most cells come out as slices of what was uploaded (ASCII or already NFKC, at
/// most trimmed): those become new 16-byte views over the uploaded column's buffers, and
/// only the cells that really change are copied, so `in.*` costs little beside `raw.*`.
pub fn shaped(e: Expr, shape: Shape) -> Expr {
    e.map(
        move |c: Column| {
            let ca = c.str()?;
            // Each cell through `text::shape` once: where the result is a slice of the
            // cell, its byte range; otherwise the cell changes (or empties to null).
            const NOT_A_SLICE: (u32, u32) = (u32::MAX, 0);
            let mut spans: Vec<(u32, u32)> = Vec::with_capacity(ca.len());
            let mut changed: Vec<bool> = Vec::with_capacity(ca.len());
            let mut owned: Vec<(usize, Option<String>)> = Vec::new();
            for (i, v) in ca.iter().enumerate() {
                let Some(s) = v else {
                    spans.push(NOT_A_SLICE);
                    changed.push(false);
                    continue;
                };
                match text::shape(s, shape) {
                    Some(Cow::Borrowed(t)) => {
                        let start = t.as_ptr() as usize - s.as_ptr() as usize;
                        spans.push((start as u32, (start + t.len()) as u32));
                        changed.push(false);
                    }
                    other => {
                        spans.push(NOT_A_SLICE);
                        changed.push(true);
                        owned.push((i, other.map(Cow::into_owned)));
                    }
                }
            }
            let next = std::cell::Cell::new(0usize);
            let (next, spans) = (&next, &spans);
            // SAFETY: each new view is a sub-slice of its own value, cut at the char
            // boundaries `text::shape` cut it at, in the same buffer; other slots keep
            // their view. `apply_views` visits every slot in order.
            let sliced = unsafe {
                ca.apply_views(move |view, val| {
                    let i = next.get();
                    next.set(i + 1);
                    match spans[i] {
                        NOT_A_SLICE => view,
                        (start, end) => update_view(view, start as usize, end as usize, val),
                    }
                })
            };
            let mut out = if owned.is_empty() {
                sliced
            } else {
                // The changed cells (and those left empty: null), merged over the slices;
                // the merge keeps both arrays' buffers instead of copying values.
                let mut values: Vec<Option<String>> = vec![None; ca.len()];
                for (i, v) in owned {
                    values[i] = v;
                }
                let owned = StringChunked::from_iter_options(c.name().clone(), values.into_iter());
                let changed = BooleanChunked::from_slice(c.name().clone(), &changed);
                owned.zip_with(&changed, &sliced)?
            };
            out.set_sorted_flag(polars::series::IsSorted::Not);
            Ok(out.with_name(c.name().clone()).into_column())
        },
        |_, f| Ok(f.clone()),
    )
}

/// Trimmed text (SPEC §4).
pub fn text(e: Expr) -> Expr {
    shaped(e, Shape::Trimmed)
}

/// [`text`] with inner runs of white space collapsed (names, organisation names).
pub fn collapsed(e: Expr) -> Expr {
    shaped(e, Shape::Collapsed)
}

/// [`text`] with every white space removed (codes, numbers, enumerations).
pub fn compact(e: Expr) -> Expr {
    shaped(e, Shape::Compact)
}

/// Phone numbers: digits only, without a +86 / 0086 country prefix.
pub fn phone(e: Expr) -> Expr {
    shaped(e, Shape::Phone)
        .str()
        .replace(lit(r"^(\+86|0086|86)(1\d{10})$"), lit("$2"), false)
}

/// An enumeration input mapped to its accepted value; null when empty or not accepted.
pub fn enumeration(input: Expr, vocab: &Vocabulary) -> Expr {
    let (from, to): (Vec<&str>, Vec<&str>) = vocab.mapping().unzip();
    input.replace_strict(
        lit(Series::new("from".into(), from)),
        lit(Series::new("to".into(), to)),
        Some(lit(NULL).cast(DataType::String)),
        Some(DataType::String),
    )
}

/// Date text: one pattern for `2017-05-04`, `2017/5/4`, `2017.05`, `2017-05`, `201705`,
/// `20170504`, `2017年5月`, `2017年5月4日` (spaces already removed, time of day dropped).
pub const DATE_RE: &str =
    r"^(\d{4})(?:[-/.年](\d{1,2})(?:[-/.月](\d{1,2})日?|月)?|(\d{2})(\d{2})?)$";

/// The parts of a date text that [`DATE_RE`] matches, parsed by hand (one pass per
/// cell; the regex with its captures was the most expensive step of normalisation): the
/// year, and the month and day where given. `None` where the pattern does not match.
pub fn parse_date(s: &str) -> Option<(i32, Option<i32>, Option<i32>)> {
    let ascii_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    // One or two digits, then what follows (the pattern's `\d{1,2}` is always followed
    // by a non-digit or the end, so the longest run is the only possible match).
    let small = |t: &str| -> Option<(i32, usize)> {
        let n = t.bytes().take_while(u8::is_ascii_digit).count();
        (1..=2)
            .contains(&n)
            .then(|| Some((t[..n].parse().ok()?, n)))?
    };
    let (year, rest) = s.split_at_checked(4)?;
    if !ascii_digits(year) {
        return None;
    }
    let y: i32 = year.parse().ok()?;
    if ascii_digits(rest) {
        // 201705, 20170504
        return match rest.len() {
            2 => Some((y, Some(rest.parse().ok()?), None)),
            4 => Some((
                y,
                Some(rest[..2].parse().ok()?),
                Some(rest[2..].parse().ok()?),
            )),
            _ => None,
        };
    }
    let rest = rest.strip_prefix(['-', '/', '.', '年'])?;
    let (m, n) = small(rest)?;
    let rest = &rest[n..];
    if rest.is_empty() || rest == "月" {
        return Some((y, Some(m), None));
    }
    let rest = rest.strip_prefix(['-', '/', '.', '月'])?;
    let (d, n) = small(rest)?;
    matches!(&rest[n..], "" | "日").then_some((y, Some(m), Some(d)))
}

/// Which part of a date [`date_part_expr`] takes.
#[derive(Debug, Clone, Copy)]
pub enum DatePart {
    Year,
    Month,
    Day,
}

/// One part of the dates of a column of date texts ([`parse_date`]); null where the text
/// is not a date or does not give that part.
pub fn date_part_expr(e: Expr, part: DatePart) -> Expr {
    e.map(
        move |c: Column| {
            let out: Int32Chunked = c
                .str()?
                .iter()
                .map(|v| {
                    let (y, m, d) = parse_date(v?)?;
                    match part {
                        DatePart::Year => Some(y),
                        DatePart::Month => m,
                        DatePart::Day => d,
                    }
                })
                .collect();
            Ok(out.with_name(c.name().clone()).into_column())
        },
        |_, f| {
            Ok(polars::prelude::Field::new(
                f.name().clone(),
                DataType::Int32,
            ))
        },
    )
}

/// Column names of the parsed parts of a date field.
pub fn date_part(f: Field, part: &str) -> String {
    format!("{}.{part}", f.key())
}

fn leap(y: Expr) -> Expr {
    (y.clone() % lit(4))
        .eq(lit(0))
        .and((y.clone() % lit(100)).neq(lit(0)))
        .or((y % lit(400)).eq(lit(0)))
}

/// Days in month `m` of year `y`.
pub fn days_in_month(y: Expr, m: Expr) -> Expr {
    when(m.clone().eq(lit(2)))
        .then(when(leap(y)).then(lit(29)).otherwise(lit(28)))
        .when(
            m.clone()
                .eq(lit(4))
                .or(m.clone().eq(lit(6)))
                .or(m.clone().eq(lit(9)))
                .or(m.eq(lit(11))),
        )
        .then(lit(30))
        .otherwise(lit(31))
}

/// True when y/m/d (d may be null: month precision) is a real date in 1900–2100.
pub fn is_real_date(y: Expr, m: Expr, d: Expr) -> Expr {
    let ym_ok = y
        .clone()
        .gt_eq(lit(1900))
        .and(y.clone().lt_eq(lit(2100)))
        .and(m.clone().gt_eq(lit(1)))
        .and(m.clone().lt_eq(lit(12)));
    let d_ok = d
        .clone()
        .is_null()
        .or(d.clone().gt_eq(lit(1)).and(d.lt_eq(days_in_month(y, m))));
    ym_ok.and(d_ok).fill_null(lit(false))
}

/// The normalised input (`in.*`) of a field of `kind` from its uploaded text.
pub fn input(kind: Kind, raw: Expr) -> Expr {
    match kind {
        Kind::PersonName | Kind::OrgName | Kind::Text { .. } | Kind::Email => collapsed(raw),
        Kind::IdNumber => shaped(raw, Shape::Upper),
        Kind::Phone => phone(raw),
        Kind::DevNumber | Kind::Enum(_) => compact(raw),
        Kind::Date => compact(raw.str().replace(
            lit(r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$"),
            lit(""),
            false,
        )),
    }
}

/// The `in.*` (normalised input) and canonical columns of every template field, plus the
/// parsed parts of date fields (`<key>.y`, `.m`, `.d`, `.ok`).
pub fn normalise(lf: LazyFrame, template: &Template) -> LazyFrame {
    let mut inputs = Vec::new();
    for c in template.columns {
        inputs.push(input(c.kind, col(col_raw(c.field))).alias(col_in(c.field)));
    }
    let mut canon = Vec::new();
    let mut parts = Vec::new();
    for c in template.columns {
        let input = col(col_in(c.field));
        match c.kind {
            Kind::Enum(v) => canon.push(enumeration(input, v).alias(col_val(c.field))),
            Kind::Date => {
                parts.push(
                    date_part_expr(input.clone(), DatePart::Year).alias(date_part(c.field, "y")),
                );
                parts.push(
                    date_part_expr(input.clone(), DatePart::Month).alias(date_part(c.field, "m")),
                );
                parts.push(date_part_expr(input, DatePart::Day).alias(date_part(c.field, "d")));
            }
            _ => canon.push(input.alias(col_val(c.field))),
        }
    }
    let mut dates = Vec::new();
    for c in template.columns {
        if let Kind::Date = c.kind {
            let (y, m, d) = (
                col(date_part(c.field, "y")),
                col(date_part(c.field, "m")),
                col(date_part(c.field, "d")),
            );
            let ok = is_real_date(y.clone(), m.clone(), d.clone());
            let month = concat_str(
                [
                    y.cast(DataType::String),
                    m.cast(DataType::String).str().zfill(lit(2)),
                ],
                "-",
                false,
            );
            let iso = when(d.clone().is_null())
                .then(month.clone())
                .otherwise(concat_str(
                    [month, d.cast(DataType::String).str().zfill(lit(2))],
                    "-",
                    false,
                ));
            dates.push(ok.clone().alias(date_part(c.field, "ok")));
            dates.push(
                when(ok)
                    .then(iso)
                    .otherwise(lit(NULL).cast(DataType::String))
                    .alias(col_val(c.field)),
            );
        }
    }
    lf.with_columns(inputs)
        .with_columns(canon.into_iter().chain(parts).collect::<Vec<_>>())
        .with_columns(dates)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse_date` against `DATE_RE` with polars' regex captures (what it replaced).
    #[test]
    fn dates_parse_as_the_pattern_matches_them() {
        let inputs = [
            "2017-05-04",
            "2017/5/4",
            "2017.05",
            "2017-05",
            "201705",
            "20170504",
            "2017年5月",
            "2017年5月4日",
            "2017年05月04日",
            "2017-5",
            "2017.5.4",
            "2017",
            "201",
            "",
            "2017-",
            "2017-123",
            "2017-12-345",
            "2017-1-2日",
            "2017年5月4",
            "2017年5",
            "2017月5",
            "2017-05月",
            "2017-05-04日日",
            "2017050",
            "201705041",
            "2017/05/04 ",
            "a2017-05",
            "2017-05-0a",
            "2017-00-00",
            "0000-99-99",
            "2017--05",
            "2017-05-",
            "2017年",
            "年5月",
            "２０１７-05",
            "2017-٠٥",
            "2017年12月31日",
            "9999-9-9",
            "1900年1月",
            "2017-05/04",
        ];
        let df = df!("d" => inputs.to_vec()).unwrap();
        let groups = col("d").str().extract_groups(DATE_RE).unwrap();
        let g = |i: &str| {
            groups
                .clone()
                .struct_()
                .field_by_name(i)
                .cast(DataType::Int32)
        };
        let old = df
            .clone()
            .lazy()
            .select([
                g("1").alias("y"),
                g("2").fill_null(g("4")).alias("m"),
                g("3").fill_null(g("5")).alias("d"),
            ])
            .collect()
            .unwrap();
        let new = df
            .lazy()
            .select([
                date_part_expr(col("d"), DatePart::Year).alias("y"),
                date_part_expr(col("d"), DatePart::Month).alias("m"),
                date_part_expr(col("d"), DatePart::Day).alias("d"),
            ])
            .collect()
            .unwrap();
        for (i, input) in inputs.iter().enumerate() {
            let row = |f: &DataFrame| -> Vec<Option<i32>> {
                ["y", "m", "d"]
                    .iter()
                    .map(|c| f.column(c).unwrap().i32().unwrap().get(i))
                    .collect()
            };
            // The pattern's `\d` is any Unicode digit, which the Int32 cast then turns
            // into null: for such text only the parts that did parse are compared.
            if input.chars().any(|c| c.is_numeric() && !c.is_ascii_digit()) {
                assert_eq!(row(&new), vec![None, None, None], "{input:?}");
                continue;
            }
            assert_eq!(row(&new), row(&old), "{input:?}");
        }
    }

    /// The chain of polars string kernels `shaped` replaced: NFKC and trim per cell, then
    /// regex replacements and upper-casing over the column.
    fn reference(e: Expr, shape: Shape) -> Expr {
        let trimmed = e.map(
            |c: Column| {
                let ca = c.str()?;
                let out: StringChunked =
                    ca.apply(|v| v.map(text::normalise_cow).filter(|t| !t.is_empty()));
                Ok(out.into_column())
            },
            |_, f| Ok(f.clone()),
        );
        let null_if_empty = |e: Expr| {
            when(e.clone().str().len_bytes().eq(lit(0u32)))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(e)
        };
        let compact = null_if_empty(
            trimmed
                .clone()
                .str()
                .replace_all(lit(r"\s+"), lit(""), false),
        );
        match shape {
            Shape::Trimmed => trimmed,
            Shape::Collapsed => trimmed.str().replace_all(lit(r"\s+"), lit(" "), false),
            Shape::Compact => compact,
            Shape::Upper => compact.str().to_uppercase(),
            Shape::Phone => compact.str().replace_all(lit(r"[-()]"), lit(""), false),
        }
    }

    #[test]
    fn one_pass_shapes_equal_the_kernel_chain() {
        let cells: Vec<Option<&str>> = vec![
            None,
            Some(""),
            Some("   "),
            Some("x"),
            Some("  张 三  "),
            Some("张\u{3000}\u{3000}三"),
            Some("a \t b"),
            Some("a\u{00A0}b"),
            Some("a  b"),
            Some(" 44010320050101001x "),
            Some("4401 0320 0501 0100 1x"),
            Some("ＡＢＣ（２）班"),
            Some("138-0013-8000"),
            Some("(+86) 138 0013 8000"),
            Some("-"),
            Some("ß ǆ straße"),
            Some("e\u{301}"),
            Some("\u{200B}汉族\u{FEFF}"),
            Some("\u{2060}"),
            Some("Plain ASCII"),
        ];
        // Cells that only need trimming (a column of them takes the shared-buffer path),
        // long and short, beside the mixed column above.
        let slices: Vec<Option<&str>> = vec![
            Some("  a fairly long ascii value  "),
            None,
            Some("x "),
            Some(" 共青团广东省委员会 "),
            Some("4401032005010100"),
        ];
        for cells in [cells, slices] {
            check_shapes(cells);
        }
    }

    fn check_shapes(cells: Vec<Option<&str>>) {
        let df = df!["v" => cells].unwrap();
        for shape in [
            Shape::Trimmed,
            Shape::Collapsed,
            Shape::Compact,
            Shape::Upper,
            Shape::Phone,
        ] {
            let out = df
                .clone()
                .lazy()
                .select([
                    shaped(col("v"), shape).alias("new"),
                    reference(col("v"), shape).alias("old"),
                ])
                .collect()
                .unwrap();
            let new: Vec<Option<&str>> = out.column("new").unwrap().str().unwrap().iter().collect();
            let old: Vec<Option<&str>> = out.column("old").unwrap().str().unwrap().iter().collect();
            assert_eq!(new, old, "{shape:?}");
        }
    }
}
