//! The organisation tree (SPEC §2): parsing an org file (CSV or xlsx) with every problem
//! listed, scope checks, and "did you mean" suggestions for unknown names.

use std::collections::{HashMap, HashSet};

use schemas::OrgCategory;

use crate::text::{normalise, normalise_header, normalise_org};

/// One organisation.
#[derive(Debug, Clone)]
pub struct Org {
    pub full_name: String,
    pub short_name: String,
    pub category: OrgCategory,
    pub parent: Option<usize>,
    /// The parent, when it is not in this file but already registered.
    pub registered_parent: Option<RegisteredOrg>,
    /// Effective province code (own or inherited).
    pub province: Option<String>,
    pub industry: Option<String>,
    pub school_code: Option<String>,
    pub secretary: Option<Secretary>,
}

/// An organisation already in the registry that an org file names as a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredOrg {
    pub full_name: String,
    /// Effective province code.
    pub province: Option<String>,
    /// Has no parent itself (a national root when it has no province either).
    pub is_root: bool,
    /// Normalised full names of its registered ancestors, the root first: a file that
    /// moves one of them below this organisation would close a loop.
    pub ancestors: Vec<String>,
}

/// The deepest an organisation may sit below its root. Real trees are under ten levels
/// (中央, 省, 市, 县, 学校, 团总支, 团支部); the bound keeps ancestor paths small.
pub const MAX_DEPTH: usize = 32;

/// A secretary named in the org file (created as an incomplete person, SPEC §2).
#[derive(Debug, Clone)]
pub struct Secretary {
    pub name: String,
    pub id_number: String,
    pub phone: Option<String>,
}

/// A rejected org file: every problem, one line each.
#[derive(Debug, thiserror::Error)]
#[error("组织文件有 {} 处错误，未导入：\n{}", problems.len(), problems.join("\n"))]
pub struct OrgFileError {
    pub problems: Vec<String>,
}

pub use crate::resolver::{LookupError, OrgMatch, OrgResolver, Resolved};

/// The whole tree, loaded from an org file.
#[derive(Debug, Clone)]
pub struct OrgTree {
    orgs: Vec<Org>,
    by_key: HashMap<String, usize>,
    /// Pre- and post-order numbers of a depth-first walk: `a` is an ancestor of `i` when
    /// `enter[a] <= enter[i] && exit[i] <= exit[a]`, in constant time at any depth.
    enter: Vec<u32>,
    exit: Vec<u32>,
}

/// Columns of an org file read at most (it has ten; some spare for notes).
const ORG_FILE_COLUMNS: u32 = 64;

const HEADERS: [&str; 10] = [
    "组织全称",
    "组织简称",
    "组织类别",
    "上级组织全称",
    "行业类别",
    "省份代码",
    "学校机构编号",
    "书记姓名",
    "书记身份证号码",
    "书记手机号码",
];

impl OrgTree {
    pub fn orgs(&self) -> &[Org] {
        &self.orgs
    }

    pub fn len(&self) -> usize {
        self.orgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }

    /// Index of an organisation by (any form of) its full name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_key.get(&normalise_org(name)).copied()
    }

    pub fn get(&self, idx: usize) -> &Org {
        &self.orgs[idx]
    }

    /// True when `idx` is `ancestor` or below it.
    pub fn is_within(&self, idx: usize, ancestor: usize) -> bool {
        self.enter[ancestor] <= self.enter[idx] && self.exit[idx] <= self.exit[ancestor]
    }

    /// Parses an org file: xlsx/xls/ods by content, otherwise CSV (UTF-8, BOM allowed).
    /// Every parent must be in the file.
    pub fn parse(bytes: &[u8]) -> Result<OrgTree, OrgFileError> {
        Self::parse_with(bytes, |_| Ok::<_, std::convert::Infallible>(HashMap::new()))
            .unwrap_or_else(|never| match never {})
    }

    /// Parses an org file whose parents may also be registered organisations: `registered`
    /// is asked once, with the normalised names of the parents the file does not hold,
    /// and answers with those it knows. Its error (the registry could not be asked) is
    /// the outer one; the file's own problems are the inner one.
    pub fn parse_with<E>(
        bytes: &[u8],
        registered: impl FnOnce(&[String]) -> Result<HashMap<String, RegisteredOrg>, E>,
    ) -> Result<Result<OrgTree, OrgFileError>, E> {
        match read_table(bytes) {
            Ok(rows) => OrgTree::from_rows_with(rows, registered),
            Err(p) => Ok(Err(OrgFileError { problems: vec![p] })),
        }
    }

    /// Builds the tree from rows whose first row is the header; every parent in the file.
    pub fn from_rows(rows: Vec<Vec<String>>) -> Result<OrgTree, OrgFileError> {
        Self::from_rows_with(rows, |_| Ok::<_, std::convert::Infallible>(HashMap::new()))
            .unwrap_or_else(|never| match never {})
    }

    /// Builds the tree from rows whose first row is the header (see [`Self::parse_with`]).
    pub fn from_rows_with<E>(
        rows: Vec<Vec<String>>,
        registered: impl FnOnce(&[String]) -> Result<HashMap<String, RegisteredOrg>, E>,
    ) -> Result<Result<OrgTree, OrgFileError>, E> {
        let mut problems = Vec::new();
        let Some(header_at) = rows
            .iter()
            .take(6)
            .position(|r| r.iter().any(|c| normalise_header(c) == "组织全称"))
        else {
            return Ok(Err(OrgFileError {
                problems: vec![
                    "找不到表头（需要列：组织全称、组织简称、组织类别、上级组织全称…）".into(),
                ],
            }));
        };
        let header: Vec<String> = rows[header_at]
            .iter()
            .map(|h| normalise_header(h))
            .collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let cols: Vec<Option<usize>> = HEADERS.iter().map(|h| col(h)).collect();
        for required in [0usize, 2, 3] {
            if cols[required].is_none() {
                problems.push(format!("缺少列：{}", HEADERS[required]));
            }
        }
        if !problems.is_empty() {
            return Ok(Err(OrgFileError { problems }));
        }
        // Names are kept as registered (shown in reports) and compared normalised.
        let name_cell = |row: &[String], i: usize| -> Option<String> {
            cols[i]
                .and_then(|c| row.get(c))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let cell = |row: &[String], i: usize| -> Option<String> {
            cols[i]
                .and_then(|c| row.get(c))
                .map(|v| normalise(v))
                .filter(|v| !v.is_empty())
        };

        struct Pending {
            line: usize,
            parent_key: Option<String>,
            own_province: Option<String>,
        }
        let mut orgs = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate().skip(header_at + 1) {
            let line = i + 1;
            if row.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let Some(full_name) = name_cell(row, 0) else {
                problems.push(format!("第{line}行：组织全称为空"));
                continue;
            };
            let category = match cell(row, 2) {
                Some(c) => match OrgCategory::parse(&c) {
                    Some(c) => c,
                    None => {
                        problems.push(format!(
                            "第{line}行：组织类别“{c}”无效，应为：团的领导机关、团委、团工委、团总支、团支部"
                        ));
                        continue;
                    }
                },
                None => {
                    problems.push(format!("第{line}行：组织类别为空"));
                    continue;
                }
            };
            let own_province = cell(row, 5);
            if let Some(p) = &own_province
                && (p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                problems.push(format!("第{line}行：省份代码“{p}”应为2位数字"));
            }
            let school_code = cell(row, 6);
            if let Some(s) = &school_code
                && (s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()))
            {
                problems.push(format!("第{line}行：学校机构编号“{s}”应为10位数字"));
            }
            let secretary = match (cell(row, 7), cell(row, 8)) {
                (Some(name), Some(id)) => Some(Secretary {
                    name,
                    id_number: id.to_uppercase(),
                    phone: cell(row, 9),
                }),
                (None, None) => None,
                _ => {
                    problems.push(format!("第{line}行：书记姓名和书记身份证号码须同时填写"));
                    None
                }
            };
            let key = normalise_org(&full_name);
            if let Some(prev) = by_key.get(&key) {
                problems.push(format!(
                    "第{line}行：组织全称“{full_name}”重复（第{}行已有）",
                    pending[*prev].line
                ));
                continue;
            }
            by_key.insert(key, orgs.len());
            orgs.push(Org {
                full_name,
                short_name: name_cell(row, 1).unwrap_or_default(),
                category,
                parent: None,
                registered_parent: None,
                province: None,
                industry: cell(row, 4),
                school_code,
                secretary,
            });
            pending.push(Pending {
                line,
                parent_key: name_cell(row, 3),
                own_province,
            });
        }
        let lines: Vec<usize> = pending.iter().map(|p| p.line).collect();
        problems.extend(secretary_problems(&orgs, &lines));
        let mut tree_problems = 0;
        let mut outside: Vec<String> = pending
            .iter()
            .filter_map(|p| p.parent_key.as_deref().map(normalise_org))
            .filter(|k| !by_key.contains_key(k))
            .collect();
        outside.sort_unstable();
        outside.dedup();
        let known = if outside.is_empty() {
            HashMap::new()
        } else {
            registered(&outside)?
        };
        for (idx, p) in pending.iter().enumerate() {
            if let Some(parent) = &p.parent_key {
                let key = normalise_org(parent);
                match (by_key.get(&key), known.get(&key)) {
                    (Some(&pi), _) => orgs[idx].parent = Some(pi),
                    (None, Some(r)) => orgs[idx].registered_parent = Some(r.clone()),
                    (None, None) => {
                        tree_problems += 1;
                        problems.push(format!("第{}行：上级组织“{parent}”不存在", p.line));
                    }
                }
            }
        }
        // The tree as it will be once loaded: the file's organisations with the file's
        // parents, and above a registered parent its registered ancestors, unless the
        // file moves one of them (then the walk goes on from the file's row).
        let n = orgs.len();
        let mut parent: Vec<Option<usize>> = orgs.iter().map(|o| o.parent).collect();
        let mut extra: HashMap<String, usize> = HashMap::new();
        for (i, org) in orgs.iter().enumerate() {
            let Some(r) = &org.registered_parent else {
                continue;
            };
            // r's chain, nearest first: r, its parent, … the root.
            let mut keys: Vec<String> = vec![normalise_org(&r.full_name)];
            keys.extend(r.ancestors.iter().rev().cloned());
            // Link i → the first key, each registered key → the next, until a file row.
            let mut below = i;
            for key in &keys {
                if let Some(&f) = by_key.get(key) {
                    parent[below] = Some(f);
                    break;
                }
                let node = *extra.entry(key.clone()).or_insert_with(|| {
                    parent.push(None);
                    parent.len() - 1
                });
                parent[below] = Some(node);
                below = node;
            }
        }
        let walk = walk_up(&parent);
        let in_cycle: Vec<usize> = (0..n).filter(|&i| walk.depth[i].is_none()).collect();
        if !in_cycle.is_empty() {
            tree_problems += 1;
            let lines: Vec<String> = in_cycle
                .iter()
                .take(20)
                .map(|&i| pending[i].line.to_string())
                .collect();
            problems.push(format!(
                "上级组织关系形成循环（第{}行{}）",
                lines.join("、"),
                if in_cycle.len() > 20 { "等" } else { "" }
            ));
        }
        let too_deep: Vec<usize> = (0..n)
            .filter(|&i| walk.depth[i].is_some_and(|d| d > MAX_DEPTH))
            .collect();
        if let Some(&first) = too_deep.first() {
            tree_problems += 1;
            problems.push(format!(
                "第{}行：组织层级超过 {MAX_DEPTH} 层（共 {} 个组织过深），请检查上级组织",
                pending[first].line,
                too_deep.len()
            ));
        }
        if tree_problems == 0 {
            // Province codes top-down: roots without a code are national; their
            // children are provincial-level and must carry one; below them a code may
            // only repeat the inherited one.
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| walk.depth[i]);
            for i in order {
                let own = pending[i].own_province.clone();
                let registered = orgs[i].registered_parent.as_ref();
                let inherited = match (orgs[i].parent, registered) {
                    (Some(p), _) => orgs[p].province.clone(),
                    (None, Some(r)) => r.province.clone(),
                    (None, None) => None,
                };
                let parent_is_national = match (orgs[i].parent, registered) {
                    (Some(p), _) => {
                        orgs[p].province.is_none()
                            && orgs[p].parent.is_none()
                            && orgs[p].registered_parent.is_none()
                    }
                    (None, Some(r)) => r.province.is_none() && r.is_root,
                    (None, None) => false,
                };
                if own.is_none() && inherited.is_none() && parent_is_national {
                    problems.push(format!(
                        "第{}行：省级组织“{}”须填写省份代码",
                        pending[i].line, orgs[i].full_name
                    ));
                }
                if let (Some(o), Some(inh)) = (&own, &inherited)
                    && o != inh
                {
                    problems.push(format!(
                        "第{}行：省份代码“{o}”与上级组织的省份代码“{inh}”不一致",
                        pending[i].line
                    ));
                }
                orgs[i].province = own.or(inherited);
            }
        }
        if !problems.is_empty() {
            return Ok(Err(OrgFileError { problems }));
        }
        let (enter, exit) = euler(&orgs);
        Ok(Ok(OrgTree {
            orgs,
            by_key,
            enter,
            exit,
        }))
    }

    /// A resolver for one uploader (the uploader must exist).
    pub fn resolver(&self, uploader: &str) -> Option<TreeResolver<'_>> {
        let idx = self.find(uploader)?;
        Some(TreeResolver {
            tree: self,
            uploader: idx,
        })
    }
}

/// Depths in a forest given by parents, in time linear in its size whatever its depth:
/// `None` for a node on a loop or below one.
struct Walk {
    depth: Vec<Option<usize>>,
}

fn walk_up(parent: &[Option<usize>]) -> Walk {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Unseen,
        OnPath,
        Done,
    }
    let n = parent.len();
    let mut state = vec![State::Unseen; n];
    let mut depth: Vec<Option<usize>> = vec![None; n];
    let mut path: Vec<usize> = Vec::new();
    for start in 0..n {
        if state[start] == State::Done {
            continue;
        }
        let mut i = start;
        // Depth of the topmost node of the path, once known.
        let top = loop {
            match state[i] {
                State::Done => break depth[i].map(|d| d + 1),
                State::OnPath => break None,
                State::Unseen => {
                    state[i] = State::OnPath;
                    path.push(i);
                    match parent[i] {
                        Some(p) => i = p,
                        None => break Some(0),
                    }
                }
            }
        };
        // The path from its top down: each one deeper than the one above.
        let mut d = top;
        while let Some(node) = path.pop() {
            depth[node] = d;
            state[node] = State::Done;
            d = d.map(|x| x + 1);
        }
    }
    Walk { depth }
}

/// Pre- and post-order numbers of the file's tree (see [`OrgTree::is_within`]), by an
/// explicit stack: no recursion, whatever the depth.
fn euler(orgs: &[Org]) -> (Vec<u32>, Vec<u32>) {
    let n = orgs.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, o) in orgs.iter().enumerate() {
        match o.parent {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    let (mut enter, mut exit) = (vec![0u32; n], vec![0u32; n]);
    let mut clock = 0u32;
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in roots {
        enter[root] = clock;
        clock += 1;
        stack.push((root, 0));
        while let Some((node, next)) = stack.last_mut() {
            if let Some(&child) = children[*node].get(*next) {
                *next += 1;
                enter[child] = clock;
                clock += 1;
                stack.push((child, 0));
            } else {
                exit[*node] = clock;
                clock += 1;
                stack.pop();
            }
        }
    }
    (enter, exit)
}

/// The 书记 of each organisation checked as a roster row's person would be (§5.1 ID
/// number, name, mobile phone when given), all at once: one problem per bad field.
fn secretary_problems(orgs: &[Org], lines: &[usize]) -> Vec<String> {
    let named: Vec<(usize, &Secretary)> = orgs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.secretary.as_ref().map(|s| (i, s)))
        .collect();
    if named.is_empty() {
        return Vec::new();
    }
    let people: Vec<(&str, &str, &str)> = named
        .iter()
        .map(|(_, s)| {
            (
                s.name.as_str(),
                s.id_number.as_str(),
                s.phone.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let checks = match crate::person::check_people(&people, crate::validate::today_in_china()) {
        Ok(c) => c,
        Err(e) => return vec![format!("书记信息无法检查（{e}）")],
    };
    let mut problems = Vec::new();
    for ((i, s), check) in named.iter().zip(checks) {
        for (field, code) in check.findings {
            if field == schemas::Field::Phone
                && code == schemas::ErrorCode::RequiredMissing
                && s.phone.is_none()
            {
                continue;
            }
            let label = match field {
                schemas::Field::Name => "书记姓名",
                schemas::Field::IdNumber => "书记身份证号码",
                _ => "书记手机号码",
            };
            problems.push(format!("第{}行：{label}：{}", lines[*i], code.message()));
        }
    }
    problems
}

/// Reads an org file into rows of text. Never panics: a panic inside the spreadsheet
/// parser is a problem of the file, as for rosters.
fn read_table(bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    std::panic::catch_unwind(|| read_table_inner(bytes))
        .unwrap_or_else(|_| Err("组织文件结构异常，解析器无法处理（可能已损坏）".to_string()))
}

fn read_table_inner(bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    let limits = crate::read::ReadLimits::default();
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(format!("组织文件超过 {} MB", limits.max_file_bytes >> 20));
    }
    let is_workbook = bytes.starts_with(b"PK") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
    if is_workbook {
        // The roster's guards: format by content, sizes, token bound, streamed cells.
        crate::read::read_grid(bytes, &limits, ORG_FILE_COLUMNS)
            .map_err(|r| format!("组织文件无法读取：{}", r.message))
    } else {
        let text =
            std::str::from_utf8(bytes).map_err(|_| "组织文件不是 UTF-8 编码的 CSV".to_string())?;
        let text = text.trim_start_matches('\u{FEFF}');
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for record in reader.records() {
            let rec = record.map_err(|e| format!("组织文件 CSV 格式错误（{e}）"))?;
            if rows.len() > limits.max_rows {
                return Err(format!("组织文件超过 {} 行", limits.max_rows));
            }
            rows.push(
                rec.iter()
                    .take(ORG_FILE_COLUMNS as usize)
                    .map(str::to_string)
                    .collect(),
            );
        }
        Ok(rows)
    }
}

/// [`OrgResolver`] over an in-memory tree, for offline validation.
pub struct TreeResolver<'t> {
    tree: &'t OrgTree,
    uploader: usize,
}

impl TreeResolver<'_> {
    /// Up to three full names in the uploader's scope close to `key`: the org whose
    /// short name it is, names containing it, then names sharing most character pairs.
    fn suggest(&self, key: &str, index: &SuggestIndex) -> Vec<String> {
        let tree = self.tree;
        let mut out: Vec<String> = Vec::new();
        if let Some(ids) = index.by_short.get(key) {
            out.extend(ids.iter().map(|&i| tree.orgs[i].full_name.clone()));
        }
        let grams = bigrams(key);
        let mut scores: HashMap<usize, usize> = HashMap::new();
        for g in &grams {
            if let Some(ids) = index.by_gram.get(g) {
                for &i in ids {
                    *scores.entry(i).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores
            .into_iter()
            .map(|(i, shared)| {
                let total = grams.len() + index.gram_counts[&i];
                (i, 2.0 * shared as f64 / total.max(1) as f64)
            })
            .filter(|(_, dice)| *dice >= 0.5)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (i, _) in ranked {
            let name = &tree.orgs[i].full_name;
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        out.truncate(3);
        out
    }
}

struct SuggestIndex {
    by_short: HashMap<String, Vec<usize>>,
    by_gram: HashMap<(char, char), Vec<usize>>,
    gram_counts: HashMap<usize, usize>,
}

fn bigrams(s: &str) -> HashSet<(char, char)> {
    let chars: Vec<char> = s.chars().collect();
    chars.windows(2).map(|w| (w[0], w[1])).collect()
}

impl OrgResolver for TreeResolver<'_> {
    fn uploader_name(&self) -> &str {
        &self.tree.orgs[self.uploader].full_name
    }

    fn uploader_province(&self) -> Option<&str> {
        self.tree.orgs[self.uploader].province.as_deref()
    }

    fn resolve(&self, keys: &[&str]) -> Result<Vec<Resolved>, LookupError> {
        let tree = self.tree;
        let mut index: Option<SuggestIndex> = None;
        Ok(keys
            .iter()
            .map(|key| match tree.by_key.get(*key) {
                Some(&i) => {
                    let o = &tree.orgs[i];
                    Ok(OrgMatch {
                        full_name: o.full_name.clone(),
                        category: o.category,
                        province: o.province.clone(),
                        in_scope: tree.is_within(i, self.uploader),
                    })
                }
                None => {
                    // Built lazily: only files with unknown names pay for it; limited
                    // to the uploader's scope so no other organisation's name leaks.
                    let index = index.get_or_insert_with(|| {
                        let mut by_short: HashMap<String, Vec<usize>> = HashMap::new();
                        let mut by_gram: HashMap<(char, char), Vec<usize>> = HashMap::new();
                        let mut gram_counts = HashMap::new();
                        for (i, o) in tree.orgs.iter().enumerate() {
                            if !tree.is_within(i, self.uploader) {
                                continue;
                            }
                            if !o.short_name.is_empty() {
                                by_short
                                    .entry(normalise_org(&o.short_name))
                                    .or_default()
                                    .push(i);
                            }
                            let grams = bigrams(&o.full_name);
                            gram_counts.insert(i, grams.len());
                            for g in grams {
                                by_gram.entry(g).or_default().push(i);
                            }
                        }
                        SuggestIndex {
                            by_short,
                            by_gram,
                            gram_counts,
                        }
                    });
                    Err(self.suggest(key, index))
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str) -> Vec<Vec<String>> {
        csv.lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    }

    const HEAD: &str = "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号";

    #[test]
    fn a_good_tree_inherits_provinces() {
        let t = OrgTree::from_rows(rows(&format!(
            "{HEAD}\n共青团中央,团中央,团的领导机关,,,,\n共青团广东省委员会,广东团省委,团的领导机关,共青团中央,,44,\n某中学团委,某中学,团委,共青团广东省委员会,,,\n某中学初一（1）班团支部,初一1班,团支部,某中学团委,,,"
        )))
        .unwrap();
        let b = t.find("某中学初一(1)班团支部").unwrap();
        assert_eq!(t.get(b).province.as_deref(), Some("44"));
        assert!(t.is_within(b, t.find("共青团广东省委员会").unwrap()));
        let r = t.resolver("某中学团委").unwrap();
        let got = r
            .resolve(&["某中学初一(1)班团支部", "初一1班", "某中学初一(2)班团支部"])
            .unwrap();
        assert!(got[0].as_ref().unwrap().in_scope);
        // Suggested as registered, full-width parentheses included.
        assert_eq!(
            got[1].as_ref().unwrap_err(),
            &vec!["某中学初一（1）班团支部".to_string()]
        );
        assert_eq!(
            got[2].as_ref().unwrap_err(),
            &vec!["某中学初一（1）班团支部".to_string()]
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let err = OrgTree::from_rows(rows(&format!(
            "{HEAD}\n共青团中央,团中央,团的领导机关,,,,\nA,A,团委,B,,,\nB,B,团委,A,,,\nC,C,团小组,共青团中央,,,\nD,D,团委,不存在,,,\nD,D,团委,共青团中央,,4,\nE,E,团委,共青团中央,,,"
        )))
        .unwrap_err();
        let text = err.problems.join("\n");
        for needle in ["团小组", "不存在", "重复", "循环"] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        let err = OrgTree::from_rows(rows(&format!(
            "{HEAD}\n共青团中央,团中央,团的领导机关,,,,\nE,E,团委,共青团中央,,,\nF,F,团委,共青团中央,,4x,"
        )))
        .unwrap_err();
        let text = err.problems.join("\n");
        assert!(text.contains("须填写省份代码"), "{text}");
        assert!(text.contains("应为2位数字"), "{text}");
    }
}
