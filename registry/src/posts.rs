//! The columns of `cadre_posts` a load writes, declared once, as `people`'s are: the
//! COPY header, the staging table of stored people's posts and their merge all derive
//! from [`COLUMNS`] (a test compares the declaration with the table).

use std::sync::LazyLock;

/// What a load does with a column of a stored post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The post's key (its holder and organisation); never changed.
    Key,
    /// Replaced by the upload's value, and what tells whether the post changed.
    Compared,
    /// Replaced on every write, but no reason to write (which upload wrote last).
    Stamp,
}

/// One column of `cadre_posts` a load writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// Its type in the staging table.
    pub sql_type: &'static str,
    pub role: Role,
}

const fn column(name: &'static str, sql_type: &'static str, role: Role) -> Column {
    Column {
        name,
        sql_type,
        role,
    }
}

/// In COPY order: a post's line is its holder and organisation, the five fields of its
/// text (`load::text`), then the upload.
pub const COLUMNS: &[Column] = &[
    column("id_number", r#"text COLLATE "C""#, Role::Key),
    column("org_id", "bigint", Role::Key),
    column("duty", "text", Role::Compared),
    column("appointed_on", "date", Role::Compared),
    column("appointed_precision", "text", Role::Compared),
    column("nature", "text", Role::Compared),
    column("party_committee_member", "boolean", Role::Compared),
    column("upload_id", "bigint", Role::Stamp),
];

/// Columns of `cadre_posts` no load writes (the table's own default).
pub const NOT_LOADED: &[&str] = &["updated_at"];

fn names(role: Option<Role>, prefix: &str) -> String {
    COLUMNS
        .iter()
        .filter(|c| role.is_none_or(|r| c.role == r))
        .map(|c| format!("{prefix}{}", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The column list of a post's COPY line.
pub fn copy_header() -> &'static str {
    static HEADER: LazyLock<String> = LazyLock::new(|| names(None, ""));
    &HEADER
}

/// `COPY cadre_posts (…) FROM STDIN`: new people's posts, straight in.
pub fn copy_new() -> &'static str {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("COPY cadre_posts ({}) FROM STDIN", copy_header()));
    &SQL
}

/// Creates `load_posts`, the staging table of stored people's posts.
pub fn create_stage() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|c| format!("{} {}", c.name, c.sql_type))
            .collect();
        format!(
            "CREATE TEMP TABLE load_posts ({}) ON COMMIT DROP",
            columns.join(", ")
        )
    });
    &SQL
}

/// Merges the staged posts: new ones inserted, stored ones updated where a compared
/// column differs.
pub fn merge_stored() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let set: Vec<String> = COLUMNS
            .iter()
            .filter(|c| c.role != Role::Key)
            .map(|c| format!("{0} = EXCLUDED.{0}", c.name))
            .chain(["updated_at = now()".to_string()])
            .collect();
        format!(
            "INSERT INTO cadre_posts AS c ({}) SELECT {} FROM load_posts
             ON CONFLICT ({}) DO UPDATE SET {}
             WHERE ({}) IS DISTINCT FROM ({})",
            copy_header(),
            copy_header(),
            names(Some(Role::Key), ""),
            set.join(", "),
            names(Some(Role::Compared), "c."),
            names(Some(Role::Compared), "EXCLUDED."),
        )
    });
    &SQL
}
