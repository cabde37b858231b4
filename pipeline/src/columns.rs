//! The names of the frame's columns for a field (uploaded, normalised, canonical), and
//! the one join that keeps file order: shared by every stage.

use schemas::Field;

/// A left join that keeps the left frame's row order (window rules depend on file order).
pub fn left_join() -> polars::prelude::JoinArgs {
    use polars::prelude::{JoinArgs, JoinType, MaintainOrderJoin};
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    args
}

/// Column of the uploaded text of a field.
pub fn col_raw(f: Field) -> String {
    format!("raw.{}", f.key())
}

/// Column of the normalised input of a field.
pub fn col_in(f: Field) -> String {
    format!("in.{}", f.key())
}

/// Column of the canonical value of a field (what the database stores).
pub fn col_val(f: Field) -> String {
    f.key().to_string()
}
