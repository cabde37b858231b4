//! Each staged row's COPY lines, for `people` and `cadre_posts`: its text, and what only
//! the load knows (branch ids, the upload).

use super::*;

/// The COPY lines of staged rows: their text, and what only the load knows (branch ids,
/// the upload).
pub(super) struct Lines<'a> {
    pub(super) text: &'a LoadText,
    pub(super) load_time: &'a [&'static people::Column],
    pub(super) members: bool,
    pub(super) upload: Option<&'a str>,
    pub(super) branch_ids: &'a [Option<i64>],
    pub(super) uploader_id: i64,
}

impl Lines<'_> {
    pub(super) fn org(&self, s: &Staged) -> Option<i64> {
        if self.members {
            s.branch.and_then(|b| self.branch_ids[b as usize])
        } else {
            Some(self.uploader_id)
        }
    }

    /// A line of `people`.
    pub(super) fn person(&self, out: &mut String, s: &Staged) {
        out.push_str(self.text.person(s.at));
        for c in self.load_time {
            out.push('\t');
            match (c.value, self.org(s)) {
                // Template B rows are posts, not memberships.
                _ if !self.members && c.on_update == OnUpdate::Membership => copy_field(out, None),
                (Value::Branch, Some(org)) => {
                    let _ = write!(out, "{org}");
                }
                (Value::Branch, None) => copy_field(out, None),
                _ => copy_field(out, self.upload),
            }
        }
        out.push('\n');
    }

    /// A line of `cadre_posts` (as `load_posts` has it).
    pub(super) fn post(&self, out: &mut String, s: &Staged) {
        let org = self.org(s).map(|o| o.to_string());
        copy_fields(out, &[Some(&s.id_number), org.as_deref()]);
        out.push('\t');
        out.push_str(self.text.post(s.at).unwrap_or_default());
        out.push('\t');
        out.push_str(self.upload.unwrap_or("\\N"));
        out.push('\n');
    }
}
