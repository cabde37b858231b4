//! PostgreSQL's COPY text format and streaming it to the server: how every bulk write
//! of the registry reaches a table.

use sqlx::PgConnection;

use crate::RegistryError;

/// One line of PostgreSQL's COPY text format.
pub(crate) fn copy_line(out: &mut String, fields: &[Option<&str>]) {
    copy_fields(out, fields);
    out.push('\n');
}

/// Fields of a COPY text line, tab-separated, without the line end.
pub(crate) fn copy_fields(out: &mut String, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        copy_field(out, *f);
    }
}

/// One field of a COPY text line: `\N` for null, else the text escaped.
pub(crate) fn copy_field(out: &mut String, field: Option<&str>) {
    match field {
        None => out.push_str("\\N"),
        // Most fields need no escape: copied whole.
        Some(v)
            if !v
                .bytes()
                .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) =>
        {
            out.push_str(v)
        }
        Some(v) => {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

/// Streams COPY data; the COPY is aborted if sending fails.
pub(crate) async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<u64, RegistryError> {
    let mut copy = CopyWriter::begin(conn, statement).await?;
    for chunk in data.chunks(COPY_CHUNK) {
        copy.send(chunk).await?;
    }
    copy.finish().await
}

/// Chunk size of COPY data sent to the server; building the next chunk overlaps with the
/// server writing the last one.
const COPY_CHUNK: usize = 1 << 20;

/// Streams the COPY lines `line` writes for each item, a chunk at a time (the whole text
/// never sits in memory); the COPY is aborted if sending fails. Returns the rows stored.
pub(crate) async fn copy_rows<'a, T: 'a, I, F>(
    conn: &mut PgConnection,
    statement: &str,
    items: I,
    line: F,
) -> Result<u64, RegistryError>
where
    I: Iterator<Item = &'a T>,
    F: FnMut(&mut String, &'a T),
{
    let mut copy = CopyWriter::begin(conn, statement).await?;
    copy.write(items, line).await?;
    copy.finish().await
}

/// A COPY fed in parts, as its lines become known; sent a chunk at a time. Dropped
/// unfinished, the COPY fails and its transaction with it.
pub(crate) struct CopyWriter<'c> {
    /// `None` once aborted: a writer that failed is not written to again.
    copy: Option<sqlx::postgres::PgCopyIn<&'c mut PgConnection>>,
    buf: String,
}

impl<'c> CopyWriter<'c> {
    pub(crate) async fn begin(
        conn: &'c mut PgConnection,
        statement: &str,
    ) -> Result<CopyWriter<'c>, RegistryError> {
        Ok(CopyWriter {
            copy: Some(conn.copy_in_raw(statement).await?),
            buf: String::with_capacity(COPY_CHUNK + 4096),
        })
    }

    /// Writes the lines `line` writes for each item.
    pub(crate) async fn write<'a, T: 'a, I, F>(
        &mut self,
        items: I,
        mut line: F,
    ) -> Result<(), RegistryError>
    where
        I: Iterator<Item = &'a T>,
        F: FnMut(&mut String, &'a T),
    {
        for item in items {
            line(&mut self.buf, item);
            if self.buf.len() >= COPY_CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), RegistryError> {
        let buf = std::mem::take(&mut self.buf);
        self.send(buf.as_bytes()).await?;
        self.buf = buf;
        self.buf.clear();
        Ok(())
    }

    /// Sends COPY data; if that fails the COPY is aborted, so the server discards it.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), RegistryError> {
        let copy = self
            .copy
            .as_mut()
            .expect("a failed COPY is not written to again");
        if let Err(e) = copy.send(bytes).await {
            if let Some(copy) = self.copy.take() {
                copy.abort(e.to_string()).await?;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Sends what is left and ends the COPY; returns the rows stored.
    pub(crate) async fn finish(mut self) -> Result<u64, RegistryError> {
        if !self.buf.is_empty() {
            self.flush().await?;
        }
        let copy = self.copy.take().expect("a failed COPY is not finished");
        Ok(copy.finish().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_escape_what_copy_text_needs() {
        let cases: &[(&[Option<&str>], &str)] = &[
            (
                &[Some("a\tb"), None, Some("c\\d\ne")],
                "a\\tb\t\\N\tc\\\\d\\ne\n",
            ),
            (&[Some("张三"), Some("")], "张三\t\n"),
            (&[Some("团\r支部")], "团\\r支部\n"),
            (&[Some("\\"), Some("x\n")], "\\\\\tx\\n\n"),
        ];
        for (fields, line) in cases {
            let mut s = String::new();
            copy_line(&mut s, fields);
            assert_eq!(s, *line, "{fields:?}");
        }
    }
}
