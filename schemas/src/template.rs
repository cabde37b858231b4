//! The two roster templates of SPEC §3 as data: columns, header aliases, required flags
//! and the vocabulary of each enumerated column.

use crate::vocab::{self, Vocabulary};
use serde::{Deserialize, Serialize};

/// Which template an upload is declared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// A. 导入下级团支部团员团干部: members and cadres into subordinate branches.
    Members,
    /// B. 导入本级团干部: cadres of the uploader's own organisation.
    Cadres,
}

impl TemplateKind {
    pub fn code(self) -> &'static str {
        match self {
            TemplateKind::Members => "members",
            TemplateKind::Cadres => "cadres",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateKind> {
        match s {
            "members" => Some(TemplateKind::Members),
            "cadres" => Some(TemplateKind::Cadres),
            _ => None,
        }
    }

    pub fn template(self) -> &'static Template {
        match self {
            TemplateKind::Members => &MEMBERS,
            TemplateKind::Cadres => &CADRES,
        }
    }

    pub fn other(self) -> TemplateKind {
        match self {
            TemplateKind::Members => TemplateKind::Cadres,
            TemplateKind::Cadres => TemplateKind::Members,
        }
    }
}

/// Every field any template carries. `key()` is the column name inside the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Name,
    IdNumber,
    Ethnicity,
    PoliticalStatus,
    JoinedOn,
    DevNumber,
    Education,
    Occupation,
    Phone,
    Branch,
    IsCadre,
    Duty,
    Workplace,
    Email,
    AppointedOn,
    CadreNature,
    PartyCommitteeMember,
}

impl Field {
    pub const ALL: [Field; 17] = [
        Field::Name,
        Field::IdNumber,
        Field::Ethnicity,
        Field::PoliticalStatus,
        Field::JoinedOn,
        Field::DevNumber,
        Field::Education,
        Field::Occupation,
        Field::Phone,
        Field::Branch,
        Field::IsCadre,
        Field::Duty,
        Field::Workplace,
        Field::Email,
        Field::AppointedOn,
        Field::CadreNature,
        Field::PartyCommitteeMember,
    ];

    /// Stable snake_case key (column name in data frames, the database and JSON).
    pub fn key(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::IdNumber => "id_number",
            Field::Ethnicity => "ethnicity",
            Field::PoliticalStatus => "political_status",
            Field::JoinedOn => "joined_on",
            Field::DevNumber => "dev_number",
            Field::Education => "education",
            Field::Occupation => "occupation",
            Field::Phone => "phone",
            Field::Branch => "branch",
            Field::IsCadre => "is_cadre",
            Field::Duty => "duty",
            Field::Workplace => "workplace",
            Field::Email => "email",
            Field::AppointedOn => "appointed_on",
            Field::CadreNature => "cadre_nature",
            Field::PartyCommitteeMember => "party_committee_member",
        }
    }

    /// The canonical Chinese header, as in the downloadable templates.
    pub fn header(self) -> &'static str {
        match self {
            Field::Name => "姓名",
            Field::IdNumber => "身份证号码",
            Field::Ethnicity => "民族",
            Field::PoliticalStatus => "政治面貌",
            Field::JoinedOn => "入团年月",
            Field::DevNumber => "发展团员编号",
            Field::Education => "学历",
            Field::Occupation => "职业",
            Field::Phone => "手机号码",
            Field::Branch => "所在团支部",
            Field::IsCadre => "是否团干部",
            Field::Duty => "团内现任职务",
            Field::Workplace => "学习工作单位",
            Field::Email => "电子邮箱",
            Field::AppointedOn => "任现职年月",
            Field::CadreNature => "团干部性质",
            Field::PartyCommitteeMember => "是否同级党委（支部）成员",
        }
    }

    /// Other headers admins use for the same column, compared after header
    /// normalisation (NFKC, no spaces, no `*`, no `(必填)`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Name => &["团员姓名", "姓 名"],
            Field::IdNumber => &["身份证号", "身份证", "公民身份号码", "身份证件号码"],
            Field::Ethnicity => &["民族名称"],
            Field::PoliticalStatus => &[],
            Field::JoinedOn => &["入团时间", "入团日期", "入团年月日"],
            Field::DevNumber => &["团员编号", "发展编号", "发展团员编码"],
            Field::Education => &["最高学历", "文化程度"],
            Field::Occupation => &[],
            Field::Phone => &["手机号", "手机", "联系电话", "联系方式"],
            Field::Branch => &["团支部", "所在支部", "所在团支部全称", "团支部全称"],
            Field::IsCadre => &["是否为团干部"],
            Field::Duty => &["团内职务", "现任职务"],
            Field::Workplace => &["工作单位", "学习单位", "学习(工作)单位"],
            Field::Email => &["邮箱", "电子邮件"],
            Field::AppointedOn => &["任现职时间", "任职年月", "任现职日期"],
            Field::CadreNature => &["干部性质"],
            Field::PartyCommitteeMember => &["是否同级党委成员", "是否同级党委(支部)委员"],
        }
    }
}

/// When a column must be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Required,
    Optional,
    /// Required depending on other columns (SPEC §5.3 for 发展团员编号, 是否团干部 for 职务).
    Conditional,
}

/// How a column's values are read and checked.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A person's name: 2–30 characters, no digits.
    PersonName,
    IdNumber,
    /// A date, month precision at least (SPEC §4).
    Date,
    DevNumber,
    Phone,
    Email,
    /// Full name of an organisation.
    OrgName,
    Enum(&'static Vocabulary),
    /// Free text with a maximum length in characters.
    Text {
        max_chars: u32,
    },
}

/// One column of a template.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub field: Field,
    pub requirement: Requirement,
    pub kind: Kind,
}

const fn col(field: Field, requirement: Requirement, kind: Kind) -> Column {
    Column {
        field,
        requirement,
        kind,
    }
}

/// A roster template.
#[derive(Debug)]
pub struct Template {
    pub kind: TemplateKind,
    /// The title of the template as the registry names it.
    pub title: &'static str,
    /// Columns in template order (the order of error workbooks).
    pub columns: &'static [Column],
    /// Headers only this template has: their presence in a file declared as the other
    /// template is what makes `template_mixed`.
    pub distinctive: &'static [Field],
}

impl Template {
    pub fn column(&self, field: Field) -> Option<&Column> {
        self.columns.iter().find(|c| c.field == field)
    }

    pub fn has(&self, field: Field) -> bool {
        self.column(field).is_some()
    }

    pub fn required(&self) -> impl Iterator<Item = &Column> {
        self.columns
            .iter()
            .filter(|c| c.requirement == Requirement::Required)
    }
}

use Requirement::{Conditional, Optional, Required};

pub static MEMBERS: Template = Template {
    kind: TemplateKind::Members,
    title: "导入下级团支部团员团干部",
    columns: &[
        col(Field::Name, Required, Kind::PersonName),
        col(Field::IdNumber, Required, Kind::IdNumber),
        col(Field::Ethnicity, Required, Kind::Enum(&vocab::ETHNICITY)),
        col(
            Field::PoliticalStatus,
            Required,
            Kind::Enum(&vocab::POLITICAL_STATUS),
        ),
        col(Field::JoinedOn, Required, Kind::Date),
        col(Field::DevNumber, Conditional, Kind::DevNumber),
        col(Field::Education, Required, Kind::Enum(&vocab::EDUCATION)),
        col(Field::Occupation, Required, Kind::Enum(&vocab::OCCUPATION)),
        col(Field::Phone, Required, Kind::Phone),
        col(Field::Branch, Required, Kind::OrgName),
        col(Field::IsCadre, Optional, Kind::Enum(&vocab::YES_NO)),
        col(Field::Duty, Conditional, Kind::Enum(&vocab::DUTY_MEMBERS)),
        col(Field::Workplace, Optional, Kind::Text { max_chars: 100 }),
        col(Field::Email, Optional, Kind::Email),
    ],
    distinctive: &[Field::Branch, Field::Occupation, Field::IsCadre],
};

pub static CADRES: Template = Template {
    kind: TemplateKind::Cadres,
    title: "导入本级团干部",
    columns: &[
        col(Field::Name, Required, Kind::PersonName),
        col(Field::IdNumber, Required, Kind::IdNumber),
        col(Field::Ethnicity, Required, Kind::Enum(&vocab::ETHNICITY)),
        col(
            Field::PoliticalStatus,
            Required,
            Kind::Enum(&vocab::POLITICAL_STATUS),
        ),
        col(Field::JoinedOn, Required, Kind::Date),
        col(Field::DevNumber, Conditional, Kind::DevNumber),
        col(Field::Education, Required, Kind::Enum(&vocab::EDUCATION)),
        col(Field::Phone, Required, Kind::Phone),
        col(Field::Duty, Required, Kind::Enum(&vocab::DUTY_CADRES)),
        col(Field::AppointedOn, Required, Kind::Date),
        col(
            Field::CadreNature,
            Required,
            Kind::Enum(&vocab::CADRE_NATURE),
        ),
        col(
            Field::PartyCommitteeMember,
            Optional,
            Kind::Enum(&vocab::YES_NO),
        ),
    ],
    distinctive: &[Field::AppointedOn, Field::CadreNature],
};

/// Columns `roster` appends to error workbooks; ignored on upload so a fixed error
/// workbook can be uploaded again as it is (SPEC §3).
pub const REPORT_COLUMNS: [&str; 3] = ["行号", "错误代码", "错误原因"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_the_spec() {
        assert_eq!(MEMBERS.columns.len(), 14);
        assert_eq!(CADRES.columns.len(), 12);
        assert_eq!(MEMBERS.required().count(), 9);
        assert_eq!(CADRES.required().count(), 10);
        for t in [&MEMBERS, &CADRES] {
            for f in t.distinctive {
                assert!(t.has(*f));
                assert!(!t.kind.other().template().has(*f), "{f:?}");
            }
        }
    }

    #[test]
    fn headers_and_aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in Field::ALL {
            assert!(seen.insert(f.header()), "{}", f.header());
            for a in f.aliases() {
                assert!(seen.insert(a), "{a}");
            }
        }
    }
}
