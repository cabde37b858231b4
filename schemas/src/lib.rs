//! The contract of `roster` as data: roster templates, vocabularies, the error-code
//! catalogue and reference data. No I/O happens here; everything is compiled in.

pub mod codes;
pub mod excel;
pub mod orgs;
pub mod reference;
pub mod template;
pub mod vocab;

pub use codes::{ErrorCode, Level, Severity};
pub use orgs::OrgCategory;
pub use template::{Column, Field, Kind, Requirement, Template, TemplateKind};
pub use vocab::Vocabulary;
