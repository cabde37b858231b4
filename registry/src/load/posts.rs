//! The load's posts step: new people's posts COPYed straight into `cadre_posts` (a new
//! person holds none yet), stored people's staged and merged where they differ. The
//! columns are declared in `crate::posts`.

use super::*;

/// Writes the posts of the staged rows: `new` are rows of people the load creates,
/// `stored` of people already registered.
pub(super) async fn write_posts<'a>(
    tx: &mut PgConnection,
    new: impl Iterator<Item = &'a Staged>,
    stored: impl Iterator<Item = &'a Staged>,
    lines: &Lines<'_>,
) -> Result<(), LoadError> {
    let mut new = new.peekable();
    if new.peek().is_some() {
        copy_rows(
            tx,
            crate::posts::copy_new(),
            new,
            |out: &mut String, s: &Staged| lines.post(out, s),
        )
        .await?;
    }
    let mut stored = stored.peekable();
    if stored.peek().is_some() {
        sqlx::query(crate::posts::create_stage())
            .execute(&mut *tx)
            .await?;
        copy_rows(
            tx,
            "COPY load_posts FROM STDIN",
            stored,
            |out: &mut String, s: &Staged| lines.post(out, s),
        )
        .await?;
        sqlx::query(AssertSqlSafe(crate::posts::merge_stored()))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
