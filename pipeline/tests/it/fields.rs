//! §4 normalisation and §5.6 field rules, for both templates.

use schemas::{ErrorCode as E, Field, TemplateKind};

use crate::helpers::*;

#[test]
fn synonyms_and_full_width_input_pass() {
    let cases: &[Case] = &[
        ("团员", |p| p.text(Field::PoliticalStatus, "团员"), &[]),
        (
            "党员",
            |p| p.born(2000, 1, 1).text(Field::PoliticalStatus, "党员"),
            &[],
        ),
        (
            "预备党员",
            |p| p.born(2000, 1, 1).text(Field::PoliticalStatus, "预备党员"),
            &[],
        ),
        ("本科", |p| p.text(Field::Education, "本科"), &[]),
        ("大专", |p| p.text(Field::Education, "大专"), &[]),
        ("高中在读", |p| p.text(Field::Education, "高中在读"), &[]),
        ("汉", |p| p.text(Field::Ethnicity, "汉"), &[]),
        ("维吾尔", |p| p.text(Field::Ethnicity, "维吾尔"), &[]),
        (
            "spaces inside an enumeration",
            |p| p.text(Field::Ethnicity, " 汉 族 "),
            &[],
        ),
        (
            "full-width name letters",
            |p| p.text(Field::Name, "ＡＬＩＣＥ"),
            &[],
        ),
        (
            "name with a middle dot",
            |p| p.text(Field::Name, "阿依古丽·买买提"),
            &[],
        ),
        (
            "name with inner spaces",
            |p| p.text(Field::Name, "张   三"),
            &[],
        ),
        (
            "phone with spaces",
            |p| p.text(Field::Phone, "138 0013 8000"),
            &[],
        ),
        (
            "phone with +86",
            |p| p.text(Field::Phone, "+86 13800138000"),
            &[],
        ),
        (
            "full-width phone",
            |p| p.text(Field::Phone, "１３８００１３８０００"),
            &[],
        ),
        (
            "phone as a number cell",
            |p| p.set(Field::Phone, V::N(13800138000.0)),
            &[],
        ),
        (
            "团支部书记",
            |p| p.text(Field::IsCadre, "是").text(Field::Duty, "团支部书记"),
            &[],
        ),
        (
            "empty 是否团干部 means no",
            |p| p.set(Field::IsCadre, V::Empty),
            &[],
        ),
        (
            "e-mail",
            |p| p.text(Field::Email, "li.si@example.com.cn"),
            &[],
        ),
        (
            "workplace of 100 characters",
            |p| p.text(Field::Workplace, &"单".repeat(100)),
            &[],
        ),
    ];
    check(TemplateKind::Members, NATIONAL, cases);
}

#[test]
fn field_rule_edges() {
    let cases: &[Case] = &[
        (
            "群众 is not a status",
            |p| p.text(Field::PoliticalStatus, "群众"),
            &[E::EnumInvalid],
        ),
        (
            "unknown ethnicity",
            |p| p.text(Field::Ethnicity, "火星族"),
            &[E::EnumInvalid],
        ),
        (
            "unknown education",
            |p| p.text(Field::Education, "幼儿园"),
            &[E::EnumInvalid],
        ),
        (
            "unknown occupation",
            |p| p.text(Field::Occupation, "宇航员"),
            &[E::EnumInvalid],
        ),
        (
            "是否团干部 neither yes nor no",
            |p| p.text(Field::IsCadre, "也许"),
            &[E::EnumInvalid],
        ),
        (
            "duty of template B in template A",
            |p| p.text(Field::IsCadre, "是").text(Field::Duty, "常委"),
            &[E::EnumInvalid],
        ),
        (
            "cadre without duty",
            |p| p.text(Field::IsCadre, "是"),
            &[E::DutyMissing],
        ),
        (
            "duty without being a cadre is fine",
            |p| p.text(Field::Duty, "委员"),
            &[],
        ),
        (
            "digit in name",
            |p| p.text(Field::Name, "张3"),
            &[E::NameInvalid],
        ),
        (
            "one character",
            |p| p.text(Field::Name, "张"),
            &[E::NameInvalid],
        ),
        (
            "31 characters",
            |p| p.text(Field::Name, &"张".repeat(31)),
            &[E::NameInvalid],
        ),
        (
            "30 characters",
            |p| p.text(Field::Name, &"张".repeat(30)),
            &[],
        ),
        (
            "phone starting 12",
            |p| p.text(Field::Phone, "12800138000"),
            &[E::PhoneInvalid],
        ),
        (
            "phone of 10 digits",
            |p| p.text(Field::Phone, "1380013800"),
            &[E::PhoneInvalid],
        ),
        (
            "landline",
            |p| p.text(Field::Phone, "010-12345678"),
            &[E::PhoneInvalid],
        ),
        (
            "e-mail without domain",
            |p| p.text(Field::Email, "someone@"),
            &[E::EmailInvalid],
        ),
        (
            "e-mail without @",
            |p| p.text(Field::Email, "someone.example.com"),
            &[E::EmailInvalid],
        ),
        (
            "workplace of 101 characters",
            |p| p.text(Field::Workplace, &"单".repeat(101)),
            &[E::TextTooLong],
        ),
        (
            "missing name",
            |p| p.set(Field::Name, V::Empty),
            &[E::RequiredMissing],
        ),
        (
            "missing ethnicity",
            |p| p.set(Field::Ethnicity, V::Empty),
            &[E::RequiredMissing],
        ),
        (
            "blank political status",
            |p| p.text(Field::PoliticalStatus, "   "),
            &[E::RequiredMissing],
        ),
        (
            "missing education",
            |p| p.set(Field::Education, V::Empty),
            &[E::RequiredMissing],
        ),
        (
            "missing occupation",
            |p| p.set(Field::Occupation, V::Empty),
            &[E::RequiredMissing],
        ),
        (
            "missing phone",
            |p| p.set(Field::Phone, V::Empty),
            &[E::RequiredMissing],
        ),
        (
            "zero-width only",
            |p| p.text(Field::Name, "\u{200B}"),
            &[E::RequiredMissing],
        ),
        (
            "several mistakes, each reported",
            |p| {
                p.text(Field::Name, "张3")
                    .text(Field::Phone, "123")
                    .text(Field::Ethnicity, "火星族")
            },
            &[E::NameInvalid, E::PhoneInvalid, E::EnumInvalid],
        ),
    ];
    check(TemplateKind::Members, NATIONAL, cases);
}

#[test]
fn template_b_edges() {
    let cases: &[Case] = &[
        (
            "valid cadre",
            |p| p.born(1998, 1, 1).joined("2012-05").no_dev(),
            &[],
        ),
        (
            "over 28 is fine for cadres",
            |p| p.born(1990, 1, 1).joined("2004-05").no_dev(),
            &[],
        ),
        (
            "常委 is a duty in B",
            |p| {
                p.born(1998, 1, 1)
                    .joined("2012-05")
                    .no_dev()
                    .text(Field::Duty, "常委")
            },
            &[],
        ),
        (
            "unknown nature",
            |p| {
                p.born(1998, 1, 1)
                    .joined("2012-05")
                    .no_dev()
                    .text(Field::CadreNature, "全职")
            },
            &[E::EnumInvalid],
        ),
        (
            "missing duty",
            |p| {
                p.born(1998, 1, 1)
                    .joined("2012-05")
                    .no_dev()
                    .set(Field::Duty, V::Empty)
            },
            &[E::RequiredMissing],
        ),
        (
            "missing appointment date",
            |p| {
                p.born(1998, 1, 1)
                    .joined("2012-05")
                    .no_dev()
                    .set(Field::AppointedOn, V::Empty)
            },
            &[E::RequiredMissing],
        ),
        (
            "unreadable appointment date",
            |p| {
                p.born(1998, 1, 1)
                    .joined("2012-05")
                    .no_dev()
                    .text(Field::AppointedOn, "上个月")
            },
            &[E::DateInvalid],
        ),
        (
            "missing nature",
            |p| {
                p.born(1998, 1, 1)
                    .joined("2012-05")
                    .no_dev()
                    .set(Field::CadreNature, V::Empty)
            },
            &[E::RequiredMissing],
        ),
        (
            "optional party member",
            |p| {
                p.born(1998, 1, 1)
                    .joined("2012-05")
                    .no_dev()
                    .set(Field::PartyCommitteeMember, V::Empty)
            },
            &[],
        ),
        (
            "dev number rules apply",
            |p| p.born(1998, 1, 1).joined("2017-05").no_dev(),
            &[E::DevNumberMissing],
        ),
        (
            "age rule applies",
            |p| p.born(2008, 6, 15).joined("2021-05"),
            &[E::JoinAgeTooYoung],
        ),
        (
            "another valid cadre",
            |p| p.born(1997, 3, 3).joined("2012-05").no_dev(),
            &[],
        ),
    ];
    check(TemplateKind::Cadres, GUANGDONG, cases);
}
