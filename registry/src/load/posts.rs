//! The load's posts step: new people's posts COPYed straight into `cadre_posts` (a new
//! person holds none yet), stored people's staged and merged where they differ. The
//! columns are declared in `crate::posts`.

use super::*;

/// Writes the posts of the staged rows: `new` are rows of people the load creates,
/// `stored` of people already registered.
pub(super) async fn write_posts(
    tx: &mut PgConnection,
    new: &[&Staged],
    stored: &[&Staged],
    lines: &Lines<'_>,
) -> Result<(), LoadError> {
    if !new.is_empty() {
        copy_rows(
            tx,
            crate::posts::copy_new(),
            new.iter().copied(),
            |out: &mut String, s: &Staged| lines.post(out, s),
        )
        .await?;
    }
    if !stored.is_empty() {
        sqlx::query(crate::posts::create_stage())
            .execute(&mut *tx)
            .await?;
        copy_rows(
            tx,
            "COPY load_posts FROM STDIN",
            stored.iter().copied(),
            |out: &mut String, s: &Staged| lines.post(out, s),
        )
        .await?;
        sqlx::query(AssertSqlSafe(crate::posts::merge_stored()))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
