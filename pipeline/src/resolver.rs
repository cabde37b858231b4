//! What validation asks of an organisation directory, and nothing else: the uploader,
//! and for each name the organisation or suggestions. `orgs::OrgTree` answers from an
//! org file, the registry's `DbOrgs` from the database.

use schemas::OrgCategory;

/// The answer for one name: the organisation, or close full names to suggest.
pub type Resolved = Result<OrgMatch, Vec<String>>;

/// The organisation directory could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("organisation lookup failed: {0}")]
pub struct LookupError(pub String);

/// What validation needs to know about the organisation a row names.
#[derive(Debug, Clone)]
pub struct OrgMatch {
    pub full_name: String,
    pub category: OrgCategory,
    pub province: Option<String>,
    pub in_scope: bool,
}

/// Resolves organisation names for one uploader; implemented offline by [`crate::orgs::OrgTree`] and
/// by the database loader.
pub trait OrgResolver: Sync {
    /// Full name of the uploader's organisation.
    fn uploader_name(&self) -> &str;
    /// The uploader's province code.
    fn uploader_province(&self) -> Option<&str>;
    /// For each normalised name: the organisation, or suggestions of close full names.
    /// `Err` when the directory itself could not be asked (worth retrying).
    fn resolve(&self, keys: &[&str]) -> Result<Vec<Resolved>, LookupError>;
}
