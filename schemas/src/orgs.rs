//! Organisation categories (SPEC §2): the five kinds of 团组织 and their Chinese names.

use serde::{Deserialize, Serialize};

/// The category (组织类别) of an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgCategory {
    /// 团的领导机关: 团中央, provincial, city and county committees.
    LeadingBody,
    /// 团委.
    Committee,
    /// 团工委.
    WorkingCommittee,
    /// 团总支.
    GeneralBranch,
    /// 团支部: the only kind that holds members.
    Branch,
}

impl OrgCategory {
    pub const ALL: [OrgCategory; 5] = [
        OrgCategory::LeadingBody,
        OrgCategory::Committee,
        OrgCategory::WorkingCommittee,
        OrgCategory::GeneralBranch,
        OrgCategory::Branch,
    ];

    /// Stable code, as stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            OrgCategory::LeadingBody => "leading_body",
            OrgCategory::Committee => "committee",
            OrgCategory::WorkingCommittee => "working_committee",
            OrgCategory::GeneralBranch => "general_branch",
            OrgCategory::Branch => "branch",
        }
    }

    /// The Chinese name used in organisation files and exports.
    pub fn chinese(self) -> &'static str {
        match self {
            OrgCategory::LeadingBody => "团的领导机关",
            OrgCategory::Committee => "团委",
            OrgCategory::WorkingCommittee => "团工委",
            OrgCategory::GeneralBranch => "团总支",
            OrgCategory::Branch => "团支部",
        }
    }

    /// Parses either the Chinese name or the stable code.
    pub fn parse(s: &str) -> Option<OrgCategory> {
        OrgCategory::ALL
            .into_iter()
            .find(|c| c.chinese() == s || c.code() == s)
    }
}

/// Province codes whose organisations follow the Xinjiang rules (SPEC §2: 新疆 65 and
/// 新疆生产建设兵团 66).
pub const XINJIANG_PROVINCES: [&str; 2] = ["65", "66"];
