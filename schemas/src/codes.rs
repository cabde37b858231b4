//! The error-code catalogue (SPEC §3–§5): one enum, each variant a rule with a stable
//! snake_case code, a severity, a Chinese message and a fix hint for the 说明 sheet.

use serde::{Deserialize, Serialize};

/// Whether a finding keeps the row out of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row is not loaded.
    Error,
    /// The row is loaded and the finding reported.
    Warning,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            Severity::Error => "错误",
            Severity::Warning => "提示",
        }
    }
}

/// Whether a code judges the whole file or one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    File,
    Row,
}

macro_rules! catalogue {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident = $code:literal, $level:ident, $severity:ident, db: $db:literal,
            message: $msg:literal, hint: $hint:literal;
    )+) => {
        /// Every finding `roster` can report. The doc comment of each variant is its rule.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl ErrorCode {
            /// Every code, in catalogue order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// Stable snake_case code (reports, JSON, database).
            pub fn code(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)+ }
            }

            pub fn level(self) -> Level {
                match self { $(ErrorCode::$variant => Level::$level,)+ }
            }

            pub fn severity(self) -> Severity {
                match self { $(ErrorCode::$variant => Severity::$severity,)+ }
            }

            /// True when only the database can decide this code (the offline
            /// validator never produces it).
            pub fn needs_database(self) -> bool {
                match self { $(ErrorCode::$variant => $db,)+ }
            }

            /// The Chinese message; row findings add specifics after it.
            pub fn message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $msg,)+ }
            }

            /// How to fix it, for the 说明 sheet.
            pub fn hint(self) -> &'static str {
                match self { $(ErrorCode::$variant => $hint,)+ }
            }

            /// The rule, as documented on the variant.
            pub fn rule(self) -> &'static str {
                match self { $(ErrorCode::$variant => concat!($($doc),+).trim_ascii(),)+ }
            }
        }
    };
}

catalogue! {
    /// The file was declared as one template and its headers are the other's.
    TemplateMixed = "template_mixed", File, Error, db: false,
        message: "您上传的excel表格错误，‘导入本级团干部’和‘导入下级团支部团员团干部’中所下载的模板不可混用，请重新上传正确的表格",
        hint: "确认选择的导入功能与所下载的模板一致后重新上传";
    /// The headers match neither template; the message names the missing required columns.
    TemplateUnknown = "template_unknown", File, Error, db: false,
        message: "表格不是可识别的导入模板，缺少必填列",
        hint: "请下载最新模板，保留表头后填写";
    /// Not a spreadsheet, corrupt, password-protected or empty; the message says which.
    FileUnreadable = "file_unreadable", File, Error, db: false,
        message: "文件无法读取",
        hint: "请用 Excel 或 WPS 另存为 .xlsx（不设密码）后重新上传";
    /// More rows than the configured limit, or larger than the decompressed size limit.
    FileTooLarge = "file_too_large", File, Error, db: false,
        message: "文件超出大小限制",
        hint: "请拆分为多个文件分别上传";
    /// The ID cell was stored by Excel as a number, which cannot hold 18 digits exactly.
    IdNumberAsNumber = "id_number_as_number", Row, Error, db: false,
        message: "身份证号码被Excel存成了数字，末几位已丢失",
        hint: "将该列设置为“文本”格式后重新输入完整的身份证号码";
    /// The ID number has the wrong length or characters (18: 17 digits and a digit or X).
    IdNumberFormat = "id_number_format", Row, Error, db: false,
        message: "身份证号码格式错误，应为18位（最后一位可为X）",
        hint: "核对身份证号码位数，不要输入空格或其他字符";
    /// A 15-digit pre-1999 number; the message gives the 18-digit form.
    IdNumberLegacy = "id_number_legacy", Row, Error, db: false,
        message: "15位旧身份证号码，请使用18位号码",
        hint: "填写18位身份证号码（信息中已给出换算结果，请与本人证件核对）";
    /// The birth date in the ID number does not exist, is before 1900 or in the future.
    IdNumberBirthdate = "id_number_birthdate", Row, Error, db: false,
        message: "身份证号码中的出生日期无效",
        hint: "核对身份证号码第7–14位（出生年月日）";
    /// The first six digits are not a region code that has ever existed (810000/820000/830000 are valid).
    IdNumberRegion = "id_number_region", Row, Error, db: false,
        message: "身份证号码前6位地区码不存在",
        hint: "核对身份证号码前6位";
    /// The check character (ISO 7064 MOD 11-2) is wrong.
    IdNumberChecksum = "id_number_checksum", Row, Error, db: false,
        message: "身份证号码校验位错误",
        hint: "身份证号码中有数字填错，请与本人证件逐位核对";
    /// Too young when joining: 13 from 2017-01-01 (and always in 新疆), 12 before.
    JoinAgeTooYoung = "join_age_too_young", Row, Error, db: false,
        message: "入团年龄不符合规定，系统无法录入；已列入上报省级团委的汇总表",
        hint: "由发展其入团的团组织或县级团委开具说明，经省级团委汇总后报团中央统一录入";
    /// 入团年月 is before the birth date or in the future.
    JoinedOnInvalid = "joined_on_invalid", Row, Error, db: false,
        message: "入团年月不合理（早于出生日期或晚于今天）",
        hint: "核对入团年月";
    /// A member aged 28 or more on the upload date who holds no post.
    OverAge = "over_age", Row, Warning, db: false,
        message: "已满28周岁且未担任团内职务，应办理离团",
        hint: "确认是否担任团干部；非团干部应按规定办理离团手续";
    /// 发展团员编号 is required: joined on or after 2017-01-01 (新疆: 2016-01-01).
    DevNumberMissing = "dev_number_missing", Row, Error, db: false,
        message: "2017年1月1日（新疆2016年1月1日）及以后入团的团员须填写发展团员编号",
        hint: "向发展其入团的团组织查询发展团员编号后填写";
    /// 情况一: the number is already used by another person, in the database or earlier in the file.
    DevNumberTaken = "dev_number_taken", Row, Error, db: false,
        message: "发展团员编号已被他人占用，请请求上级组织协助，联系找到编号持有人协商解决",
        hint: "请上级组织协助查找编号持有人，协商确认编号归属";
    /// 情况二: the first four digits are not the year of joining (2017/2018 accept either).
    DevNumberYearMismatch = "dev_number_year_mismatch", Row, Error, db: false,
        message: "发展团员编号前四位年份与入团时间不一致",
        hint: "核对入团年月与编号前四位";
    /// 情况三: not 12 digits, or digits 5–6 are not the province code of the organisation.
    DevNumberSegment = "dev_number_segment", Row, Error, db: false,
        message: "发展团员编号位数或号段不对",
        hint: "编号为12位：入团年份4位＋省份代码2位＋顺序号6位";
    /// 情况四: the number holds anything but digits.
    DevNumberFormat = "dev_number_format", Row, Error, db: false,
        message: "发展团员编号填写有误，只能是数字",
        hint: "删除编号中的字母、空格和符号";
    /// No organisation has exactly this full name (组织不存在); closest names suggested.
    OrgNotFound = "org_not_found", Row, Error, db: false,
        message: "组织不存在，“所在团支部”须填写组织全称",
        hint: "在系统中查看团支部的组织全称并原样填写";
    /// The organisation exists but is not a 团支部: members only belong to branches.
    OrgNotBranch = "org_not_branch", Row, Error, db: false,
        message: "该组织不是团支部，团员只能导入到团支部",
        hint: "填写团员所在团支部的全称";
    /// The organisation is not the uploader's own nor below it.
    OrgOutOfScope = "org_out_of_scope", Row, Error, db: false,
        message: "该团支部不在本组织管理范围内",
        hint: "只能导入本组织及下级组织的人员；其他组织的人员请由其上级组织导入";
    /// The organisation's full name contains parentheses: identity verification will fail for now.
    OrgNameParentheses = "org_name_parentheses", Row, Warning, db: false,
        message: "组织全称中含有括号，导入人员暂时会认证不通过，后台之后统一再次认证，不影响功能使用",
        hint: "无需处理；不建议为此修改组织名称";
    /// The same person twice in one file (a member belongs to one branch only).
    IdDuplicateInFile = "id_duplicate_in_file", Row, Error, db: false,
        message: "同一人在本表中重复出现",
        hint: "保留一行，删除重复行；团员只能在一个团支部";
    /// The person is already registered in another branch.
    IdRegisteredElsewhere = "id_registered_elsewhere", Row, Error, db: true,
        message: "此人已在其他团支部注册，请使用组织关系转接，不要重复导入",
        hint: "由转出或转入组织发起组织关系转接";
    /// A required cell is empty; the message names the field.
    RequiredMissing = "required_missing", Row, Error, db: false,
        message: "必填项为空",
        hint: "补全必填项";
    /// A date cell cannot be read as a date; the message names the field.
    DateInvalid = "date_invalid", Row, Error, db: false,
        message: "日期无法识别，可填写如 2017-05、2017年5月、2017-05-04",
        hint: "按“年-月”或“年-月-日”填写日期";
    /// A name is not 2–30 characters or contains digits.
    NameInvalid = "name_invalid", Row, Error, db: false,
        message: "姓名应为2–30个字符且不含数字",
        hint: "填写与身份证一致的姓名";
    /// Not a mainland mobile number (1[3-9] and 9 more digits).
    PhoneInvalid = "phone_invalid", Row, Error, db: false,
        message: "手机号码应为11位大陆手机号",
        hint: "填写11位手机号码，以13–19开头";
    /// Not an e-mail address.
    EmailInvalid = "email_invalid", Row, Error, db: false,
        message: "电子邮箱格式错误",
        hint: "填写如 name@example.com 的邮箱，或留空";
    /// Not one of the accepted values; the message names the field and lists them.
    EnumInvalid = "enum_invalid", Row, Error, db: false,
        message: "填写的值不在可选范围内",
        hint: "从模板下拉列表中选择";
    /// 是否团干部 = 是 without 团内现任职务.
    DutyMissing = "duty_missing", Row, Error, db: false,
        message: "是团干部但未填写团内现任职务",
        hint: "填写团内现任职务，或将“是否团干部”改为“否”";
    /// A free-text cell is longer than its limit (学习工作单位: 100 characters), or any
    /// cell longer than Excel's 32,767 characters (shown cut in the reports).
    TextTooLong = "text_too_long", Row, Error, db: false,
        message: "内容过长",
        hint: "缩短内容";
    /// A cell holds NUL or another control character: invisible, and never stored.
    ControlCharacter = "control_character", Row, Error, db: false,
        message: "内容含有不可见的控制字符",
        hint: "删除单元格中的不可见字符（可重新输入该单元格内容）";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl ErrorCode {
    pub fn from_code(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_stable_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate {c}");
            assert!(
                c.code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c} is not snake_case"
            );
            assert!(!c.rule().is_empty(), "{c} has no rule");
            assert!(!c.message().is_empty() && !c.hint().is_empty(), "{c}");
            assert!(
                c.message()
                    .chars()
                    .any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
                "{c} message is not Chinese"
            );
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
            let json = format!("\"{}\"", c.code());
            assert_eq!(serde_json_like(c), json);
        }
    }

    fn serde_json_like(c: ErrorCode) -> String {
        // serde's snake_case renaming must agree with code(): compare through the
        // Debug name converted the same way.
        let debug = format!("{c:?}");
        let mut out = String::from("\"");
        for (i, ch) in debug.chars().enumerate() {
            if ch.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_lowercase());
            } else {
                out.push(ch);
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn template_mixed_has_the_exact_registry_message() {
        assert_eq!(
            ErrorCode::TemplateMixed.message(),
            "您上传的excel表格错误，‘导入本级团干部’和‘导入下级团支部团员团干部’中所下载的模板不可混用，请重新上传正确的表格"
        );
    }
}
