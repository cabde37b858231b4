//! Enumerated fields (SPEC §3) and the synonyms admins really type (SPEC §4), as data.

/// One enumeration: the accepted values and the synonyms mapped onto them.
#[derive(Debug)]
pub struct Vocabulary {
    /// Name used in messages.
    pub name: &'static str,
    /// Accepted values, in the order shown to users.
    pub values: &'static [&'static str],
    /// `(synonym, accepted value)`: matched after normalisation (SPEC §4).
    pub synonyms: &'static [(&'static str, &'static str)],
}

impl Vocabulary {
    /// The accepted value a (normalised) input maps to, if any.
    pub fn resolve(&self, input: &str) -> Option<&'static str> {
        if let Some(v) = self.values.iter().find(|v| **v == input) {
            return Some(v);
        }
        self.synonyms
            .iter()
            .find(|(syn, _)| *syn == input)
            .map(|(_, v)| *v)
    }

    /// Every `(input, accepted value)` pair: each value mapped to itself, then the synonyms.
    pub fn mapping(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.values
            .iter()
            .map(|v| (*v, *v))
            .chain(self.synonyms.iter().copied())
    }

    /// The accepted values joined for a message.
    pub fn listing(&self) -> String {
        self.values.join("、")
    }
}

/// The 56 ethnic groups of China and 其他.
pub static ETHNICITY: Vocabulary = Vocabulary {
    name: "民族",
    values: &[
        "汉族",
        "蒙古族",
        "回族",
        "藏族",
        "维吾尔族",
        "苗族",
        "彝族",
        "壮族",
        "布依族",
        "朝鲜族",
        "满族",
        "侗族",
        "瑶族",
        "白族",
        "土家族",
        "哈尼族",
        "哈萨克族",
        "傣族",
        "黎族",
        "傈僳族",
        "佤族",
        "畲族",
        "高山族",
        "拉祜族",
        "水族",
        "东乡族",
        "纳西族",
        "景颇族",
        "柯尔克孜族",
        "土族",
        "达斡尔族",
        "仫佬族",
        "羌族",
        "布朗族",
        "撒拉族",
        "毛南族",
        "仡佬族",
        "锡伯族",
        "阿昌族",
        "普米族",
        "塔吉克族",
        "怒族",
        "乌孜别克族",
        "俄罗斯族",
        "鄂温克族",
        "德昂族",
        "保安族",
        "裕固族",
        "京族",
        "塔塔尔族",
        "独龙族",
        "鄂伦春族",
        "赫哲族",
        "门巴族",
        "珞巴族",
        "基诺族",
        "其他",
    ],
    synonyms: &[
        ("汉", "汉族"),
        ("蒙古", "蒙古族"),
        ("蒙", "蒙古族"),
        ("回", "回族"),
        ("藏", "藏族"),
        ("维吾尔", "维吾尔族"),
        ("维", "维吾尔族"),
        ("苗", "苗族"),
        ("彝", "彝族"),
        ("壮", "壮族"),
        ("布依", "布依族"),
        ("朝鲜", "朝鲜族"),
        ("满", "满族"),
        ("侗", "侗族"),
        ("瑶", "瑶族"),
        ("白", "白族"),
        ("土家", "土家族"),
        ("哈尼", "哈尼族"),
        ("哈萨克", "哈萨克族"),
        ("傣", "傣族"),
        ("黎", "黎族"),
        ("傈僳", "傈僳族"),
        ("佤", "佤族"),
        ("畲", "畲族"),
        ("高山", "高山族"),
        ("拉祜", "拉祜族"),
        ("水", "水族"),
        ("东乡", "东乡族"),
        ("纳西", "纳西族"),
        ("景颇", "景颇族"),
        ("柯尔克孜", "柯尔克孜族"),
        ("土", "土族"),
        ("达斡尔", "达斡尔族"),
        ("仫佬", "仫佬族"),
        ("羌", "羌族"),
        ("布朗", "布朗族"),
        ("撒拉", "撒拉族"),
        ("毛南", "毛南族"),
        ("仡佬", "仡佬族"),
        ("锡伯", "锡伯族"),
        ("阿昌", "阿昌族"),
        ("普米", "普米族"),
        ("塔吉克", "塔吉克族"),
        ("怒", "怒族"),
        ("乌孜别克", "乌孜别克族"),
        ("俄罗斯", "俄罗斯族"),
        ("鄂温克", "鄂温克族"),
        ("德昂", "德昂族"),
        ("保安", "保安族"),
        ("裕固", "裕固族"),
        ("京", "京族"),
        ("塔塔尔", "塔塔尔族"),
        ("独龙", "独龙族"),
        ("鄂伦春", "鄂伦春族"),
        ("赫哲", "赫哲族"),
        ("门巴", "门巴族"),
        ("珞巴", "珞巴族"),
        ("基诺", "基诺族"),
        ("其它", "其他"),
    ],
};

/// 政治面貌.
pub static POLITICAL_STATUS: Vocabulary = Vocabulary {
    name: "政治面貌",
    values: &["共青团员", "中共预备党员", "中共党员"],
    synonyms: &[
        ("团员", "共青团员"),
        ("共青团", "共青团员"),
        ("预备党员", "中共预备党员"),
        ("党员", "中共党员"),
        ("共产党员", "中共党员"),
        ("中国共产党党员", "中共党员"),
        ("中国共产党预备党员", "中共预备党员"),
    ],
};

/// 学历 (each also with 在读).
pub static EDUCATION: Vocabulary = Vocabulary {
    name: "学历",
    values: &[
        "博士",
        "硕士",
        "大学本科",
        "大学专科",
        "中等职业教育",
        "普通高中",
        "初中",
        "小学",
        "博士在读",
        "硕士在读",
        "大学本科在读",
        "大学专科在读",
        "中等职业教育在读",
        "普通高中在读",
        "初中在读",
        "小学在读",
    ],
    synonyms: &[
        ("博士研究生", "博士"),
        ("硕士研究生", "硕士"),
        ("本科", "大学本科"),
        ("大专", "大学专科"),
        ("专科", "大学专科"),
        ("中专", "中等职业教育"),
        ("中职", "中等职业教育"),
        ("职高", "中等职业教育"),
        ("技校", "中等职业教育"),
        ("高中", "普通高中"),
        ("博士研究生在读", "博士在读"),
        ("硕士研究生在读", "硕士在读"),
        ("本科在读", "大学本科在读"),
        ("大专在读", "大学专科在读"),
        ("专科在读", "大学专科在读"),
        ("中专在读", "中等职业教育在读"),
        ("中职在读", "中等职业教育在读"),
        ("职高在读", "中等职业教育在读"),
        ("高中在读", "普通高中在读"),
    ],
};

/// 职业.
pub static OCCUPATION: Vocabulary = Vocabulary {
    name: "职业",
    values: &[
        "学生",
        "国有企业职工",
        "非公企业职工",
        "机关事业单位职工",
        "社会组织员工",
        "农民",
        "自由职业者",
        "教师",
        "其他",
    ],
    synonyms: &[
        ("在校学生", "学生"),
        ("国企职工", "国有企业职工"),
        ("国企员工", "国有企业职工"),
        ("非公企业员工", "非公企业职工"),
        ("民企职工", "非公企业职工"),
        ("私企职工", "非公企业职工"),
        ("机关事业单位员工", "机关事业单位职工"),
        ("社会组织职工", "社会组织员工"),
        ("自由职业", "自由职业者"),
        ("其它", "其他"),
    ],
};

/// 是 / 否 (是否团干部, 是否同级党委（支部）成员).
pub static YES_NO: Vocabulary = Vocabulary {
    name: "是/否",
    values: &["是", "否"],
    synonyms: &[("Y", "是"), ("N", "否"), ("y", "是"), ("n", "否")],
};

/// 团内现任职务 in template A.
pub static DUTY_MEMBERS: Vocabulary = Vocabulary {
    name: "团内现任职务",
    values: &[
        "书记",
        "副书记",
        "组织委员",
        "宣传委员",
        "文体委员",
        "委员",
        "其他",
    ],
    synonyms: &[
        ("团支部书记", "书记"),
        ("支部书记", "书记"),
        ("团支书", "书记"),
        ("支书", "书记"),
        ("团支部副书记", "副书记"),
        ("其它", "其他"),
    ],
};

/// 团内现任职务 in template B (adds 常委, 候补委员, 工作人员).
pub static DUTY_CADRES: Vocabulary = Vocabulary {
    name: "团内现任职务",
    values: &[
        "书记",
        "副书记",
        "常委",
        "组织委员",
        "宣传委员",
        "文体委员",
        "委员",
        "候补委员",
        "工作人员",
        "其他",
    ],
    synonyms: &[
        ("团委书记", "书记"),
        ("团委副书记", "副书记"),
        ("常务委员", "常委"),
        ("团委委员", "委员"),
        ("其它", "其他"),
    ],
};

/// 团干部性质.
pub static CADRE_NATURE: Vocabulary = Vocabulary {
    name: "团干部性质",
    values: &["专职", "兼职", "挂职"],
    synonyms: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_synonym_points_at_an_accepted_value() {
        for v in [
            &ETHNICITY,
            &POLITICAL_STATUS,
            &EDUCATION,
            &OCCUPATION,
            &YES_NO,
            &DUTY_MEMBERS,
            &DUTY_CADRES,
            &CADRE_NATURE,
        ] {
            for (syn, target) in v.synonyms {
                assert!(v.values.contains(target), "{}: {syn} -> {target}", v.name);
                assert!(
                    !v.values.contains(syn),
                    "{}: {syn} is already a value",
                    v.name
                );
            }
        }
        assert_eq!(ETHNICITY.values.len(), 57);
        assert_eq!(ETHNICITY.resolve("汉"), Some("汉族"));
        assert_eq!(EDUCATION.resolve("本科"), Some("大学本科"));
        assert_eq!(POLITICAL_STATUS.resolve("团员"), Some("共青团员"));
        assert_eq!(POLITICAL_STATUS.resolve("群众"), None);
    }
}
