//! Deterministic pt-BR lead data: names, companies, e-mails, phones with real DDDs, valid CNPJs,
//! cities, statuses and sources with realistic weights, produced in chunks on a blocking thread.

use super::*;

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

pub(super) struct GenConfig {
    pub(super) tenant_id: Uuid,
    pub(super) admin_id: Uuid,
    pub(super) owners: Vec<Uuid>,
    pub(super) scorer: Scorer,
    pub(super) seed: u64,
    pub(super) n: u64,
    pub(super) batch: usize,
    pub(super) chunk: usize,
    pub(super) samples: usize,
    pub(super) company_prefix: String,
    pub(super) backend: DbBackend,
    /// Leads are created over the two years before this instant.
    pub(super) now: DateTime<Utc>,
}

/// What the load scripts need, accumulated while generating (sent with the last chunk).
#[derive(Default, Clone)]
pub(super) struct Summary {
    pub(super) qualified_by_owner: BTreeMap<Uuid, u64>,
    pub(super) prefix_matches: u64,
    pub(super) sample_ids: Vec<Uuid>,
    pub(super) sample_phones: Vec<String>,
}

pub(super) struct Chunk {
    pub(super) statements: Vec<Statement>,
    pub(super) leads: u64,
    pub(super) live: u64,
    pub(super) rows: Vec<(&'static str, u64)>,
    pub(super) summary: Option<Summary>,
}

pub(super) struct GenLead {
    pub(super) id: Uuid,
    pub(super) draft: LeadDraft,
    pub(super) score: i32,
    pub(super) signal_points: i32,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) deleted_at: Option<DateTime<Utc>>,
    pub(super) version: i32,
}

pub(super) fn produce(cfg: GenConfig, tx: tokio::sync::mpsc::Sender<anyhow::Result<Chunk>>) {
    let mut g = Generator::new(&cfg);
    let mut summary = Summary::default();
    let every = (cfg.n / cfg.samples.max(1) as u64).max(1);
    let mut done = 0u64;
    while done < cfg.n {
        let size = (cfg.n - done).min(cfg.chunk as u64) as usize;
        let mut leads = Vec::with_capacity(size);
        for k in 0..size {
            let i = done + k as u64;
            let l = match g.lead(i) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            if l.deleted_at.is_none() {
                if l.draft.status == LeadStatus::Qualified
                    && let Some(o) = l.draft.owner_id
                {
                    *summary.qualified_by_owner.entry(o).or_default() += 1;
                }
                if i.is_multiple_of(every) && summary.sample_ids.len() < cfg.samples {
                    summary.sample_ids.push(l.id);
                }
                if i % every == (every / 2)
                    && summary.sample_phones.len() < cfg.samples
                    && let Some(p) = &l.draft.phone
                {
                    summary.sample_phones.push(search::national_digits(p));
                }
            }
            leads.push(l);
        }
        done += size as u64;
        let chunk = build_chunk(&cfg, &leads, &mut summary);
        let chunk = chunk.map(|mut c| {
            if done == cfg.n {
                c.summary = Some(summary.clone());
            }
            c
        });
        if tx.blocking_send(chunk).is_err() {
            return;
        }
    }
}

pub(super) fn build_chunk(
    cfg: &GenConfig,
    leads: &[GenLead],
    summary: &mut Summary,
) -> anyhow::Result<Chunk> {
    let t = cfg.tenant_id;
    let mut statements = vec![];
    let mut lead_rows = vec![];
    let mut term_rows = vec![];
    let mut tag_rows = vec![];
    let mut hist_rows = vec![];
    let mut live = 0;
    let mut n_terms = 0u64;
    let mut n_tags = 0u64;
    let flush_terms = (cfg.batch * 8).min(10_000);
    let flush_hist = (cfg.batch * 4).min(4_000);
    let mut terms_stmts = vec![];
    let mut tags_stmts = vec![];
    let mut hist_stmts = vec![];
    for l in leads {
        let d = &l.draft;
        if l.deleted_at.is_none() {
            live += 1;
        }
        let terms = search::terms_for(d);
        if l.deleted_at.is_none() && terms.iter().any(|x| x.starts_with(&cfg.company_prefix)) {
            summary.prefix_matches += 1;
        }
        lead_rows.push(lead::ActiveModel {
            tenant_id: Set(t),
            id: Set(l.id),
            name_sort: Set(d.name_sort()),
            name: Set(d.name.clone()),
            email: Set(d.email.clone()),
            phone: Set(d.phone.clone()),
            company: Set(d.company.clone()),
            cnpj: Set(d.cnpj.clone()),
            position: Set(d.position.clone()),
            source: Set(d.source.as_str().to_string()),
            status: Set(d.status.as_str().to_string()),
            owner_id: Set(d.owner_id),
            tags: Set(json!(d.tags)),
            custom_fields: Set(Value::Object(d.custom_fields.clone())),
            cep: Set(d.cep.clone()),
            city: Set(d.city.clone()),
            state: Set(d.state.clone()),
            notes: Set(d.notes.clone()),
            score: Set(l.score),
            signal_points: Set(l.signal_points),
            last_contacted_at: Set(d.last_contacted_at),
            merged_into: Set(None),
            created_at: Set(l.created_at),
            updated_at: Set(l.updated_at),
            deleted_at: Set(l.deleted_at),
            version: Set(l.version),
        });
        if lead_rows.len() >= cfg.batch {
            statements
                .push(lead::Entity::insert_many(std::mem::take(&mut lead_rows)).build(cfg.backend));
        }
        for x in terms {
            n_terms += 1;
            term_rows.push(term::ActiveModel {
                tenant_id: Set(t),
                term: Set(x),
                lead_id: Set(l.id),
            });
            if term_rows.len() >= flush_terms {
                terms_stmts.push(
                    term::Entity::insert_many(std::mem::take(&mut term_rows)).build(cfg.backend),
                );
            }
        }
        for x in &d.tags {
            n_tags += 1;
            tag_rows.push(tag::ActiveModel {
                tenant_id: Set(t),
                tag: Set(x.clone()),
                lead_id: Set(l.id),
            });
            if tag_rows.len() >= flush_terms {
                tags_stmts.push(
                    tag::Entity::insert_many(std::mem::take(&mut tag_rows)).build(cfg.backend),
                );
            }
        }
        hist_rows.push(status_history::ActiveModel {
            tenant_id: Set(t),
            id: Set(v7_at(l.created_at, l.id)),
            lead_id: Set(l.id),
            from_status: Set(None),
            to_status: Set(d.status.as_str().to_string()),
            actor_id: Set(Some(cfg.admin_id)),
            created_at: Set(l.created_at),
        });
        if hist_rows.len() >= flush_hist {
            hist_stmts.push(
                status_history::Entity::insert_many(std::mem::take(&mut hist_rows))
                    .build(cfg.backend),
            );
        }
    }
    if !lead_rows.is_empty() {
        statements.push(lead::Entity::insert_many(lead_rows).build(cfg.backend));
    }
    if !term_rows.is_empty() {
        terms_stmts.push(term::Entity::insert_many(term_rows).build(cfg.backend));
    }
    if !tag_rows.is_empty() {
        tags_stmts.push(tag::Entity::insert_many(tag_rows).build(cfg.backend));
    }
    if !hist_rows.is_empty() {
        hist_stmts.push(status_history::Entity::insert_many(hist_rows).build(cfg.backend));
    }
    statements.extend(terms_stmts);
    statements.extend(tags_stmts);
    statements.extend(hist_stmts);
    let n = leads.len() as u64;
    Ok(Chunk {
        statements,
        leads: n,
        live,
        rows: vec![
            ("leads", n),
            ("lead_terms", n_terms),
            ("lead_tags", n_tags),
            ("lead_status_history", n),
        ],
        summary: None,
    })
}

/// A UUID v7 at `at` whose random part is derived from `salt` (deterministic).
pub(super) fn v7_at(at: DateTime<Utc>, salt: Uuid) -> Uuid {
    let b = salt.as_bytes();
    let mut r = [0u8; 10];
    for (k, x) in r.iter_mut().enumerate() {
        *x = b[15 - k] ^ 0xA5;
    }
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &r).into_uuid()
}

pub(super) struct Generator<'a> {
    pub(super) cfg: &'a GenConfig,
    pub(super) rng: StdRng,
    pub(super) now: DateTime<Utc>,
    /// Creation time of the next lead; leads are created in time order over two years.
    pub(super) clock_ms: f64,
    pub(super) step_ms: f64,
}

pub(super) fn pick<'x, T>(rng: &mut StdRng, items: &'x [T]) -> &'x T {
    &items[rng.random_range(0..items.len())]
}

/// An item of `(value, weight)` pairs.
pub(super) fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (v, w) in items {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

pub(super) fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.random_bool(p)
}

impl<'a> Generator<'a> {
    pub(super) fn new(cfg: &'a GenConfig) -> Self {
        let now = cfg.now;
        let span_ms = Duration::days(730).num_milliseconds() as f64;
        Self {
            cfg,
            rng: StdRng::seed_from_u64(cfg.seed),
            now,
            clock_ms: (now.timestamp_millis() as f64) - span_ms,
            step_ms: span_ms / (cfg.n.max(1) as f64),
        }
    }

    pub(super) fn lead(&mut self, i: u64) -> anyhow::Result<GenLead> {
        let rng = &mut self.rng;
        self.clock_ms += rng.random_range(0.0..(2.0 * self.step_ms));
        let created_at = DateTime::<Utc>::from_timestamp_millis(self.clock_ms as i64)
            .unwrap_or(self.now)
            .min(self.now);
        let mut rand10 = [0u8; 10];
        rng.fill(&mut rand10);
        let id = uuid::Builder::from_unix_timestamp_millis(
            created_at.timestamp_millis().max(0) as u64,
            &rand10,
        )
        .into_uuid();

        let first = *pick(rng, FIRST_NAMES);
        let last1 = *pick(rng, SURNAMES);
        let name = match rng.random_range(0..10) {
            0..=3 => format!("{first} {last1}"),
            4..=6 => {
                let mut middle = *pick(rng, SURNAMES);
                while middle == last1 {
                    middle = *pick(rng, SURNAMES);
                }
                format!("{first} {middle} {last1}")
            }
            7 => format!("{first} {} {last1}", pick(rng, PARTICLES)),
            8 => format!("{first} {} {last1}", pick(rng, FIRST_NAMES)),
            _ => format!("{} {first} {last1}", pick(rng, FIRST_NAMES)),
        };
        let city = weighted(rng, CITIES_W);
        let (city_name, uf, cep_base, ddd) = city;

        let company = chance(rng, 0.70).then(|| company_name(rng, last1));
        let email = chance(rng, 0.62).then(|| email_for(rng, first, last1, company.as_deref()));
        let phone = chance(rng, 0.85).then(|| phone_for(rng, ddd));
        let cnpj = chance(rng, 0.30).then(|| cnpj_for(rng));
        let position =
            (company.is_some() && chance(rng, 0.6)).then(|| pick(rng, POSITIONS).to_string());
        let source = weighted(rng, SOURCES_W);
        let status = weighted(rng, STATUSES_W);
        let owner = (!self.cfg.owners.is_empty() && chance(rng, 0.92))
            .then(|| *pick(rng, &self.cfg.owners));
        let ntags = weighted(rng, &[(0usize, 40), (1, 35), (2, 18), (3, 7)]);
        let mut tags: Vec<String> = vec![];
        while tags.len() < ntags {
            let t = pick(rng, TAGS).to_string();
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let has_place = chance(rng, 0.8);
        let cep = (has_place && chance(rng, 0.7)).then(|| {
            let n = cep_base * 1000 + rng.random_range(0..1000u32);
            let s = format!("{n:08}");
            if chance(rng, 0.5) {
                format!("{}-{}", &s[..5], &s[5..])
            } else {
                s
            }
        });
        let notes = chance(rng, 0.15).then(|| pick(rng, NOTES).to_string());
        let last_contacted_at = (status != LeadStatus::New && chance(rng, 0.8)).then(|| {
            (created_at + Duration::minutes(rng.random_range(5..60 * 24 * 45))).min(self.now)
        });
        let updated_at = if chance(rng, 0.5) {
            created_at
        } else {
            (created_at + Duration::minutes(rng.random_range(1..60 * 24 * 90))).min(self.now)
        };
        let version = if updated_at == created_at {
            1
        } else {
            rng.random_range(2..6)
        };
        let deleted_at = chance(rng, 0.005).then_some(updated_at);
        let signal_points = if status != LeadStatus::New && chance(rng, 0.2) {
            rng.random_range(5..=25)
        } else {
            0
        };

        let input = LeadInput {
            name: Some(Some(name)),
            email: Some(email),
            phone: Some(phone),
            company: Some(company),
            cnpj: Some(cnpj),
            position: Some(position),
            source: Some(Some(source.as_str().to_string())),
            status: Some(Some(status.as_str().to_string())),
            owner_id: Some(owner),
            tags: Some(Some(tags)),
            custom_fields: None,
            cep: Some(cep),
            city: Some(has_place.then(|| city_name.to_string())),
            state: Some(has_place.then(|| uf.to_string())),
            notes: Some(notes),
            last_contacted_at: Some(last_contacted_at),
        };
        let mut v = Validator::new();
        let draft = leads::validate(&mut v, &input, None, WriteMode::Create, &[]);
        if !v.errors.is_empty() {
            return Err(anyhow!(
                "lead {i} gerado inválido: {:?} ({input:?})",
                v.errors
            ));
        }
        let draft = draft.ok_or_else(|| anyhow!("lead {i} gerado inválido"))?;
        let score = self.cfg.scorer.score(&draft, signal_points);
        Ok(GenLead {
            id,
            draft,
            score,
            signal_points,
            created_at,
            updated_at,
            deleted_at,
            version,
        })
    }
}

pub(super) fn company_name(rng: &mut StdRng, surname: &str) -> String {
    // ~0.6 % of companies are named "Fibra…" (the company-prefix search scenario).
    let core = if chance(rng, 0.006) {
        pick(rng, FIBRA_CORES).to_string()
    } else {
        match rng.random_range(0..10) {
            0..=5 => format!("{} {}", pick(rng, BRAND_WORDS), pick(rng, SECTOR_WORDS)),
            6 | 7 => format!("{} {}", pick(rng, SECTOR_WORDS), pick(rng, PLACE_WORDS)),
            8 => format!("{surname} & Filhos {}", pick(rng, SECTOR_WORDS)),
            _ => format!("Irmãos {surname} {}", pick(rng, SECTOR_WORDS)),
        }
    };
    let suffix = *pick(rng, COMPANY_SUFFIXES);
    if suffix.is_empty() {
        core
    } else {
        format!("{core} {suffix}")
    }
}

pub(super) fn ascii_word(s: &str) -> String {
    fold_for_search(s)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

pub(super) fn email_for(
    rng: &mut StdRng,
    first: &str,
    last: &str,
    company: Option<&str>,
) -> String {
    let f = ascii_word(first);
    let l = ascii_word(last);
    let corporate = company.filter(|_| chance(rng, 0.65));
    match corporate {
        Some(c) => {
            let words: Vec<String> = c
                .split_whitespace()
                .map(ascii_word)
                .filter(|w| {
                    !w.is_empty()
                        && !["ltda", "me", "eireli", "sa", "epp", "filhos", "irmaos"]
                            .contains(&w.as_str())
                })
                .take(2)
                .collect();
            let domain = format!("{}{}", words.join(""), pick(rng, TLDS));
            let local = match rng.random_range(0..5) {
                0 => pick(rng, ROLE_MAILBOXES).to_string(),
                1 => f.clone(),
                _ => format!("{f}.{l}"),
            };
            format!("{local}@{domain}")
        }
        None => {
            let local = match rng.random_range(0..4) {
                0 => format!("{f}.{l}"),
                1 => format!("{f}{l}{}", rng.random_range(1..100)),
                2 => format!("{f}_{l}"),
                _ => format!("{f}.{l}{}", rng.random_range(1960..2006)),
            };
            let d = weighted(rng, FREE_DOMAINS_W);
            // Mixed case on input: the app lower-cases.
            if chance(rng, 0.1) {
                format!("{}@{d}", local.to_uppercase())
            } else {
                format!("{local}@{d}")
            }
        }
    }
}

pub(super) const VALID_DDDS: &[u8] = &[
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69, 71, 73, 74, 75, 77,
    79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99,
];

/// A valid phone in one of the formats people type (the app normalises to E.164).
pub(super) fn phone_for(rng: &mut StdRng, city_ddd: u8) -> String {
    let ddd = if chance(rng, 0.8) {
        city_ddd
    } else {
        *pick(rng, VALID_DDDS)
    };
    let mobile = chance(rng, 0.75);
    let sub = if mobile {
        format!(
            "9{}{:07}",
            rng.random_range(6..=9),
            rng.random_range(0..10_000_000u32)
        )
    } else {
        format!(
            "{}{:07}",
            rng.random_range(2..=5),
            rng.random_range(0..10_000_000u32)
        )
    };
    let (head, tail) = sub.split_at(sub.len() - 4);
    match rng.random_range(0..5) {
        0 => format!("+55{ddd}{sub}"),
        1 => format!("({ddd}) {head}-{tail}"),
        2 => format!("{ddd}{sub}"),
        3 => format!("0{ddd} {head}-{tail}"),
        _ => format!("+55 {ddd} {head}-{tail}"),
    }
}

pub(super) fn mod11(values: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = values.iter().zip(weights).map(|(v, w)| v * w).sum();
    let r = sum % 11;
    if r < 2 { 0 } else { 11 - r }
}

/// A valid CNPJ: mostly numeric head office (`/0001`), some branches, ~3 % in the alphanumeric
/// format of July 2026; masked half of the time.
pub(super) fn cnpj_for(rng: &mut StdRng) -> String {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut body: Vec<u8> = Vec::with_capacity(14);
    let alnum = chance(rng, 0.03);
    for _ in 0..8 {
        body.push(if alnum {
            ALNUM[rng.random_range(0..ALNUM.len())]
        } else {
            b'0' + rng.random_range(0..10u8)
        });
    }
    if chance(rng, 0.85) {
        body.extend_from_slice(b"0001");
    } else {
        body.extend_from_slice(format!("{:04}", rng.random_range(2..60)).as_bytes());
    }
    let mut v: Vec<u32> = body.iter().map(|b| u32::from(b - b'0')).collect();
    let dv1 = mod11(&v, &[5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]);
    v.push(dv1);
    let dv2 = mod11(&v, &[6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]);
    let mut s = String::from_utf8_lossy(&body).into_owned();
    s.push_str(&format!("{dv1}{dv2}"));
    if s.bytes().all(|b| b == s.as_bytes()[0]) {
        return "11222333000181".into();
    }
    if chance(rng, 0.5) {
        format!(
            "{}.{}.{}/{}-{}",
            &s[0..2],
            &s[2..5],
            &s[5..8],
            &s[8..12],
            &s[12..14]
        )
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jtcrm_types::br::{Cnpj, Phone};

    #[test]
    fn generated_values_are_valid() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..5000 {
            let c = cnpj_for(&mut rng);
            assert!(Cnpj::parse(&c).is_ok(), "{c}");
            let ddd = *pick(&mut rng, VALID_DDDS);
            let p = phone_for(&mut rng, ddd);
            assert!(Phone::parse(&p).is_ok(), "{p}");
        }
    }

    #[test]
    fn generation_is_deterministic_and_valid() {
        let cfg = GenConfig {
            tenant_id: Uuid::nil(),
            admin_id: Uuid::nil(),
            owners: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
            scorer: Scorer::default(),
            seed: 42,
            n: 3000,
            batch: 100,
            chunk: 1000,
            samples: 10,
            company_prefix: "fibra".into(),
            backend: DbBackend::Sqlite,
            now: Utc::now(),
        };
        let mut a = Generator::new(&cfg);
        let mut b = Generator::new(&cfg);
        for i in 0..3000 {
            let (x, y) = match (a.lead(i), b.lead(i)) {
                (Ok(x), Ok(y)) => (x, y),
                (Err(e), _) | (_, Err(e)) => panic!("{e}"),
            };
            assert_eq!(x.draft, y.draft);
        }
    }
}
