//! The columns of `people` a load writes, declared once. The COPY header, each row's
//! COPY fields, the staging table of stored people and the update of those who changed
//! are all derived from [`COLUMNS`], so adding a column is one entry here and one
//! migration (a test compares the declaration with the table).

use std::sync::LazyLock;

use schemas::Field;

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// The canonical value of a field (enumerations mapped, dates as `YYYY-MM[-DD]`).
    Canonical(Field),
    /// The normalised input of a field, for the fields validation keeps it of
    /// ([`pipeline::validate::LOAD_INPUTS`]).
    Input(Field),
    /// A month-or-day date field as a date (a month is stored as its first day).
    Date(Field),
    /// The precision of a month-or-day date field: `month` or `day`.
    Precision(Field),
    /// A 是/否 field as a boolean; empty is false.
    YesNo(Field),
    /// The member's branch, resolved when the load runs.
    Branch,
    /// The upload being loaded.
    Upload,
}

impl Value {
    /// Known only when the load runs (not from the validated row).
    pub fn at_load(self) -> bool {
        matches!(self, Value::Branch | Value::Upload)
    }
}

/// What happens to a stored person's column when the same person is loaded again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUpdate {
    /// The key a stored person is found by; never changed.
    Key,
    /// Replaced by the upload's value.
    Replace,
    /// Replaced unless the upload leaves it empty (template B carries no occupation,
    /// workplace or email; a development number is never erased).
    KeepWhenEmpty,
    /// A membership column: written and replaced by template A only; template B rows are
    /// posts, not memberships, and write the column's default for a new person.
    Membership,
    /// Set when the person is created, never changed.
    Created,
    /// Set on every write, but no reason to write (who wrote last).
    Stamp,
}

/// One column of `people` a load writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub value: Value,
    pub on_update: OnUpdate,
}

const fn column(name: &'static str, value: Value, on_update: OnUpdate) -> Column {
    Column {
        name,
        value,
        on_update,
    }
}

/// The declaration: every column of `people` a load writes.
pub const COLUMNS: &[Column] = {
    use OnUpdate::*;
    use Value::*;
    &[
        column("id_number", Canonical(Field::IdNumber), Key),
        column("name", Canonical(Field::Name), Replace),
        column("ethnicity", Canonical(Field::Ethnicity), Replace),
        column(
            "political_status",
            Canonical(Field::PoliticalStatus),
            Replace,
        ),
        column("joined_on", Date(Field::JoinedOn), Replace),
        column("joined_precision", Precision(Field::JoinedOn), Replace),
        column("dev_number", Input(Field::DevNumber), KeepWhenEmpty),
        column("education", Canonical(Field::Education), Replace),
        column("occupation", Canonical(Field::Occupation), KeepWhenEmpty),
        column("phone", Canonical(Field::Phone), Replace),
        column("workplace", Canonical(Field::Workplace), KeepWhenEmpty),
        column("email", Canonical(Field::Email), KeepWhenEmpty),
        column("is_cadre", YesNo(Field::IsCadre), Membership),
        column("duty", Canonical(Field::Duty), Membership),
        column("branch_id", Branch, Membership),
        column("created_by_upload", Upload, Created),
        column("updated_by_upload", Upload, Stamp),
    ]
};

/// Columns of `people` no load writes: identity verification and the login rule are
/// not roster data (SPEC §2), and the timestamps are the database's.
pub const NOT_LOADED: &[&str] = &[
    "verification",
    "password_rule",
    "must_change_password",
    "created_at",
    "updated_at",
];

/// The columns in COPY order: those known from the validated row (prepared once, on a
/// CPU thread), then those known only when the load runs.
pub fn copy_order() -> impl Iterator<Item = &'static Column> {
    let row = COLUMNS.iter().filter(|c| !c.value.at_load());
    row.chain(COLUMNS.iter().filter(|c| c.value.at_load()))
}

/// The column list of a COPY into `people` (or a table shaped like it).
pub fn copy_header() -> &'static str {
    static HEADER: LazyLock<String> =
        LazyLock::new(|| copy_order().map(|c| c.name).collect::<Vec<_>>().join(", "));
    &HEADER
}

/// Creates `load_update`, the staging table of stored people, shaped like `people`'s
/// loaded columns.
pub fn create_update_stage() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "CREATE TEMP TABLE load_update ON COMMIT DROP AS SELECT {} FROM people WITH NO DATA",
            copy_header()
        )
    });
    &SQL
}

/// Updates the stored people staged in `load_update` where something differs; `$1` is
/// true for template A (membership columns are written).
pub fn update_stored() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let new = |c: &Column| match c.on_update {
            OnUpdate::KeepWhenEmpty => format!("coalesce(u.{0}, p.{0})", c.name),
            OnUpdate::Membership => format!("CASE WHEN $1 THEN u.{0} ELSE p.{0} END", c.name),
            _ => format!("u.{}", c.name),
        };
        let compared = |c: &&Column| {
            matches!(
                c.on_update,
                OnUpdate::Replace | OnUpdate::KeepWhenEmpty | OnUpdate::Membership
            )
        };
        let set: Vec<String> = COLUMNS
            .iter()
            .filter(|c| !matches!(c.on_update, OnUpdate::Key | OnUpdate::Created))
            .map(|c| format!("{} = {}", c.name, new(c)))
            .collect();
        let old: Vec<String> = COLUMNS
            .iter()
            .filter(compared)
            .map(|c| format!("p.{}", c.name))
            .collect();
        let changed: Vec<String> = COLUMNS.iter().filter(compared).map(new).collect();
        let key: Vec<String> = COLUMNS
            .iter()
            .filter(|c| c.on_update == OnUpdate::Key)
            .map(|c| format!("p.{0} = u.{0}", c.name))
            .collect();
        format!(
            "UPDATE people p SET {}, updated_at = now()
             FROM load_update u
             WHERE {} AND ({}) IS DISTINCT FROM ({})",
            set.join(", "),
            key.join(" AND "),
            old.join(", "),
            changed.join(", ")
        )
    });
    &SQL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_and_every_name_once() {
        let keys = COLUMNS.iter().filter(|c| c.on_update == OnUpdate::Key);
        assert_eq!(keys.map(|c| c.name).collect::<Vec<_>>(), ["id_number"]);
        let mut names: Vec<_> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COLUMNS.len());
        assert!(names.iter().all(|n| !NOT_LOADED.contains(n)));
    }

    #[test]
    fn inputs_are_read_only_where_validation_keeps_them() {
        for c in COLUMNS {
            if let Value::Input(f) = c.value {
                assert!(pipeline::validate::LOAD_INPUTS.contains(&f), "{}", c.name);
            }
        }
    }

    #[test]
    fn the_copy_header_puts_load_time_columns_last() {
        let header: Vec<&str> = copy_header().split(", ").collect();
        let at_load = |name: &str| COLUMNS.iter().any(|c| c.name == name && c.value.at_load());
        let first_load_time = header.iter().position(|n| at_load(n)).unwrap();
        assert!(
            header[first_load_time..].iter().all(|n| at_load(n)),
            "{header:?}"
        );
        assert_eq!(
            &header[first_load_time..],
            ["branch_id", "created_by_upload", "updated_by_upload"]
        );
        // Within each group, the order of the declaration.
        let declared: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let row: Vec<&str> = declared.iter().copied().filter(|n| !at_load(n)).collect();
        assert_eq!(&header[..first_load_time], row.as_slice());
    }

    #[test]
    fn the_update_keeps_what_an_upload_leaves_empty_and_membership_for_template_a() {
        let sql = update_stored();
        for part in [
            "dev_number = coalesce(u.dev_number, p.dev_number)",
            "branch_id = CASE WHEN $1 THEN u.branch_id ELSE p.branch_id END",
            "updated_by_upload = u.updated_by_upload, updated_at = now()",
            "WHERE p.id_number = u.id_number AND",
        ] {
            assert!(sql.contains(part), "{part} in {sql}");
        }
        // Set at creation only; a stamp is written but never a reason to write.
        assert!(!sql.contains("created_by_upload"));
        assert!(!sql.contains("p.updated_by_upload"));
        assert!(!sql.contains("id_number = u.id_number,"));
    }
}
