//! The COPY text of a batch: made from the validated columns in parallel parts in file
//! order ([`LoadSource`], [`LoadText`]), and each row's line as `people` and
//! `cadre_posts` take it.

use super::*;

/// A column of the validated rows, when the template has the field (in one chunk, so a
/// row is found at once).
pub(super) type Source = Option<StringChunked>;

pub(super) fn get(c: &Source, i: usize) -> Option<&str> {
    c.as_ref().and_then(|c| c.get(i))
}

/// What the COPY text of a [`LoadBatch`] is made from: the columns of its valid rows
/// and their positions. Owns what it needs (polars columns share their buffers), so it
/// can go to another thread.
#[derive(Clone)]
pub struct LoadSource {
    pub(super) members: bool,
    /// The position (in the validated rows) of each staged row, in file order: line `n`
    /// of the text is the row at `lines[n]`. Read in this order, every column is read in
    /// sequence.
    pub(super) lines: Vec<u32>,
    /// Rows of a part of the text ([`TEXT_PART`]).
    pub(super) part_rows: usize,
    /// The person columns known from the row, each with its source column.
    pub(super) person: Vec<(&'static people::Column, Source)>,
    pub(super) is_cadre: Source,
    pub(super) duty: Source,
    pub(super) appointed: Source,
    pub(super) nature: Source,
    pub(super) committee: Source,
}

/// The COPY fields of every staged row: parts of [`TEXT_PART`] rows in file order, made
/// in parallel.
#[derive(Debug, Clone, Default)]
pub struct LoadText {
    pub(super) parts: Vec<TextPart>,
    /// Rows the parts cover.
    pub(super) rows: usize,
}

#[derive(Debug, Clone)]
pub(super) struct TextPart {
    pub(super) text: String,
    /// Per row: its fields of `people` (those of [`people::copy_order`] known from the
    /// row), tab-separated.
    pub(super) person: Vec<Range<u32>>,
    /// Per row: `duty, appointed_on, appointed_precision, nature, party_committee_member`.
    pub(super) post: Vec<Option<Range<u32>>>,
}

/// Rows of one part of a [`LoadText`].
pub(super) const TEXT_PART: usize = 1 << 14;

impl LoadText {
    pub(super) fn push(&mut self, part: TextPart) {
        self.rows += part.person.len();
        self.parts.push(part);
    }

    /// Every part but the last has as many rows as the first.
    pub(super) fn part(&self, at: u32) -> (&TextPart, usize) {
        let (at, n) = (at as usize, self.parts[0].person.len());
        (&self.parts[at / n], at % n)
    }

    pub(super) fn person(&self, at: u32) -> &str {
        let (p, i) = self.part(at);
        let r = &p.person[i];
        &p.text[r.start as usize..r.end as usize]
    }

    pub(super) fn post(&self, at: u32) -> Option<&str> {
        let (p, i) = self.part(at);
        p.post[i]
            .as_ref()
            .map(|r| &p.text[r.start as usize..r.end as usize])
    }
}

/// The COPY text of a [`LoadBatch`] made by [`LoadBatch::keys`], its parts coming in file
/// order from another thread while the load checks ([`LoadSource::coming`]).
pub struct TextComing {
    /// Unbounded: the load keeps every part anyway (the stored people and the posts need
    /// them after the COPY), so holding them in the channel costs nothing more, and the
    /// text is made at full speed while the load is still waiting for its first checks.
    pub(super) parts: tokio::sync::mpsc::UnboundedReceiver<TextPart>,
}

/// Parts made at a time, in parallel.
pub(super) const PARTS_AT_ONCE: usize = 4;

impl LoadSource {
    /// The COPY text of every staged row, in parallel parts.
    #[tracing::instrument(skip_all, fields(rows = self.lines.len()))]
    pub fn text(&self) -> LoadText {
        use rayon::prelude::*;
        let mut text = LoadText::default();
        let parts: Vec<TextPart> = self
            .lines
            .par_chunks(self.part_rows)
            .map(|rows| self.part(rows))
            .collect();
        for part in parts {
            text.push(part);
        }
        text
    }

    /// Makes the text in parts of `rows` rows instead of [`TEXT_PART`] (tests hold every
    /// part size to the same answer).
    pub fn in_parts_of(mut self, rows: usize) -> LoadSource {
        self.part_rows = rows.max(1);
        self
    }

    /// The COPY text of every staged row, made on a blocking thread [`PARTS_AT_ONCE`] parts
    /// at a time (in parallel) and handed over in order, while the load takes its lock and
    /// checks the first rows. Stops when the load no longer listens.
    pub fn coming(self) -> TextComing {
        use rayon::prelude::*;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_blocking(move || {
            let begun = std::time::Instant::now();
            for rows in self.lines.chunks(self.part_rows * PARTS_AT_ONCE) {
                let parts: Vec<TextPart> = rows
                    .par_chunks(self.part_rows)
                    .map(|rows| self.part(rows))
                    .collect();
                for part in parts {
                    if tx.send(part).is_err() {
                        return;
                    }
                }
            }
            let (rows, seconds) = (self.lines.len(), begun.elapsed().as_secs_f64());
            tracing::debug!(rows, seconds, "COPY text made");
        });
        TextComing { parts: rx }
    }

    pub(super) fn part(&self, rows: &[u32]) -> TextPart {
        let mut part = TextPart {
            text: String::with_capacity(rows.len() * 200),
            person: Vec::with_capacity(rows.len()),
            post: Vec::with_capacity(rows.len()),
        };
        let out = &mut part.text;
        for &i in rows {
            let i = i as usize;
            let start = out.len() as u32;
            for (n, (c, src)) in self.person.iter().enumerate() {
                if n > 0 {
                    out.push('\t');
                }
                // Template B rows are posts, not memberships: a new person gets the
                // defaults.
                let cell = if !self.members && c.on_update == OnUpdate::Membership {
                    None
                } else {
                    get(src, i)
                };
                person_field(out, c.value, cell);
            }
            part.person.push(start..out.len() as u32);
            let cadre = yes_no(get(&self.is_cadre, i));
            // Template B: every row is a post in the uploader's organisation; template
            // A: a cadre's post in the branch.
            let post = (get(&self.duty, i).is_some() && (!self.members || cadre == Some("t")))
                .then(|| {
                    let start = out.len() as u32;
                    let (on, precision) = month_or_day(get(&self.appointed, i));
                    copy_fields(
                        out,
                        &[
                            get(&self.duty, i),
                            on.as_deref(),
                            precision,
                            get(&self.nature, i),
                            yes_no(get(&self.committee, i)),
                        ],
                    );
                    start..out.len() as u32
                });
            part.post.push(post);
        }
        part
    }
}

/// One person field of a COPY line, from its cell.
pub(super) fn person_field(out: &mut String, value: Value, cell: Option<&str>) {
    match (value, cell) {
        (Value::YesNo(_), cell) => out.push(if cell == Some("是") { 't' } else { 'f' }),
        (Value::Date(_), Some(d)) => {
            copy_field(out, Some(d));
            if d.len() == 7 {
                out.push_str("-01");
            }
        }
        (Value::Precision(_), Some(d)) => out.push_str(if d.len() == 7 { "month" } else { "day" }),
        (_, cell) => copy_field(out, cell),
    }
}

/// "2017-05" is a month-precision date (stored as the first of the month).
pub(super) fn month_or_day(s: Option<&str>) -> (Option<String>, Option<&'static str>) {
    match s {
        Some(d) if d.len() == 7 => (Some(format!("{d}-01")), Some("month")),
        Some(d) => (Some(d.to_string()), Some("day")),
        None => (None, None),
    }
}

pub(super) fn yes_no(s: Option<&str>) -> Option<&'static str> {
    s.map(|v| if v == "是" { "t" } else { "f" })
}
