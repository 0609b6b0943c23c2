//! Leads: the record a telecom sales team lives in. Validation and normalisation of Brazilian data,
//! search, dedupe and merge, custom fields, assignment, rule-based scoring, CSV import and export.

pub mod assignment;
pub mod dedupe;
pub mod export;
pub mod fields;
pub mod import;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
mod queries;
pub mod routes;
pub mod scoring;
pub mod search;
pub mod service;
pub mod stats;
pub mod transfer_routes;

use chrono::{DateTime, Utc};
use jtcrm_types::br::{Cep, Cnpj, Email, Phone, Uf, fold_for_search};
use jtcrm_types::dto::leads::{
    CustomFieldDef, CustomFieldType, Lead, LeadInput, LeadSource, LeadStatus,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use self::model::lead;
pub use self::queries::*;
use jtcrm_kernel::error::Validator;
use jtcrm_kernel::store::WriteMode;

pub const MAX_TAGS: usize = 30;
pub const MAX_TAG_LEN: usize = 60;

pub fn to_dto(m: lead::Model) -> Lead {
    Lead {
        id: m.id,
        tenant_id: m.tenant_id,
        name: m.name,
        email: m.email,
        phone: m.phone,
        company: m.company,
        cnpj: m
            .cnpj
            .map(|c| Cnpj::parse(&c).map(|c| c.masked()).unwrap_or(c)),
        position: m.position,
        source: LeadSource::parse(&m.source).unwrap_or(LeadSource::Other),
        status: LeadStatus::parse(&m.status).unwrap_or(LeadStatus::New),
        owner_id: m.owner_id,
        tags: serde_json::from_value(m.tags).unwrap_or_default(),
        custom_fields: match m.custom_fields {
            Value::Object(o) => o,
            _ => Map::new(),
        },
        cep: m
            .cep
            .map(|c| Cep::parse(&c).map(|c| c.masked()).unwrap_or(c)),
        city: m.city,
        state: m.state,
        notes: m.notes,
        score: m.score,
        last_contacted_at: m.last_contacted_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
        deleted_at: m.deleted_at,
        version: m.version,
    }
}

/// A validated, normalised lead (everything but identity, score and timestamps).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadDraft {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub cnpj: Option<String>,
    pub position: Option<String>,
    pub source: LeadSource,
    pub status: LeadStatus,
    pub owner_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub custom_fields: Map<String, Value>,
    pub cep: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub notes: Option<String>,
    pub last_contacted_at: Option<DateTime<Utc>>,
}

impl LeadDraft {
    pub fn from_model(m: &lead::Model) -> Self {
        Self {
            name: m.name.clone(),
            email: m.email.clone(),
            phone: m.phone.clone(),
            company: m.company.clone(),
            cnpj: m.cnpj.clone(),
            position: m.position.clone(),
            source: LeadSource::parse(&m.source).unwrap_or(LeadSource::Other),
            status: LeadStatus::parse(&m.status).unwrap_or(LeadStatus::New),
            owner_id: m.owner_id,
            tags: serde_json::from_value(m.tags.clone()).unwrap_or_default(),
            custom_fields: m.custom_fields.as_object().cloned().unwrap_or_default(),
            cep: m.cep.clone(),
            city: m.city.clone(),
            state: m.state.clone(),
            notes: m.notes.clone(),
            last_contacted_at: m.last_contacted_at,
        }
    }

    pub fn name_sort(&self) -> String {
        fold_for_search(&self.name).chars().take(200).collect()
    }
}

fn parse_with<T>(
    v: &mut Validator,
    field: &str,
    incoming: &Option<Option<String>>,
    current: Option<&String>,
    mode: WriteMode,
    parse: impl Fn(&str) -> Result<T, jtcrm_types::br::BrError>,
    store: impl Fn(T) -> String,
) -> Option<String> {
    match incoming {
        None if mode == WriteMode::Patch => current.cloned(),
        None | Some(None) => None,
        Some(Some(s)) if s.trim().is_empty() => None,
        Some(Some(s)) => match parse(s.trim()) {
            Ok(x) => Some(store(x)),
            Err(e) => {
                v.add(field, e.code(), e.message_pt());
                None
            }
        },
    }
}

/// Validates and normalises a lead body against the current record (for `Patch`) and the tenant's
/// custom field definitions. Errors name each field.
pub fn validate(
    v: &mut Validator,
    input: &LeadInput,
    current: Option<&LeadDraft>,
    mode: WriteMode,
    defs: &[CustomFieldDef],
) -> Option<LeadDraft> {
    let cur = current;
    let name = match &input.name {
        None if mode == WriteMode::Patch => cur.map(|c| c.name.clone()),
        None | Some(None) => {
            v.add("name", "required", "Campo obrigatório");
            None
        }
        Some(Some(s)) => v.required_text("name", Some(s), 200),
    };
    let email = parse_with(
        v,
        "email",
        &input.email,
        cur.and_then(|c| c.email.as_ref()),
        mode,
        Email::parse,
        |e| e.as_str().to_string(),
    );
    let phone = parse_with(
        v,
        "phone",
        &input.phone,
        cur.and_then(|c| c.phone.as_ref()),
        mode,
        Phone::parse,
        |p| p.as_str().to_string(),
    );
    let cnpj = parse_with(
        v,
        "cnpj",
        &input.cnpj,
        cur.and_then(|c| c.cnpj.as_ref()),
        mode,
        Cnpj::parse,
        |c| c.as_str().to_string(),
    );
    let cep = parse_with(
        v,
        "cep",
        &input.cep,
        cur.and_then(|c| c.cep.as_ref()),
        mode,
        Cep::parse,
        |c| c.as_str().to_string(),
    );
    let state = parse_with(
        v,
        "state",
        &input.state,
        cur.and_then(|c| c.state.as_ref()),
        mode,
        Uf::parse,
        |u| u.as_str().to_string(),
    );
    let company = mode.optional_text(
        v,
        "company",
        &input.company,
        cur.and_then(|c| c.company.as_ref()),
        200,
    );
    let position = mode.optional_text(
        v,
        "position",
        &input.position,
        cur.and_then(|c| c.position.as_ref()),
        120,
    );
    let city = mode.optional_text(
        v,
        "city",
        &input.city,
        cur.and_then(|c| c.city.as_ref()),
        120,
    );
    let notes = mode.optional_text(
        v,
        "notes",
        &input.notes,
        cur.and_then(|c| c.notes.as_ref()),
        20_000,
    );

    let source = match &input.source {
        None if mode == WriteMode::Patch => cur.map(|c| c.source).unwrap_or(LeadSource::Other),
        None | Some(None) => LeadSource::Other,
        Some(Some(s)) => LeadSource::parse(s.trim()).unwrap_or_else(|| {
            v.add("source", "invalid_source", "Origem inválida");
            LeadSource::Other
        }),
    };
    let status = match &input.status {
        None if mode == WriteMode::Patch => cur.map(|c| c.status).unwrap_or(LeadStatus::New),
        None | Some(None) => match (mode, cur) {
            (WriteMode::Replace, Some(c)) => c.status,
            _ => LeadStatus::New,
        },
        Some(Some(s)) => LeadStatus::parse(s.trim()).unwrap_or_else(|| {
            v.add("status", "invalid_status", "Status inválido");
            LeadStatus::New
        }),
    };
    let owner_id = match &input.owner_id {
        None if mode != WriteMode::Create => cur.and_then(|c| c.owner_id),
        None => None,
        Some(o) => *o,
    };
    let tags = match &input.tags {
        None if mode == WriteMode::Patch => cur.map(|c| c.tags.clone()).unwrap_or_default(),
        None | Some(None) => vec![],
        Some(Some(list)) => normalize_tags(v, list),
    };
    // PATCH merges keys into the stored object; POST and PUT replace it.
    let stored = if mode == WriteMode::Patch {
        cur.map(|c| c.custom_fields.clone()).unwrap_or_default()
    } else {
        Map::new()
    };
    let empty = Map::new();
    let incoming = match &input.custom_fields {
        Some(Some(obj)) => obj,
        _ => &empty,
    };
    let custom_fields = fields::validate_values(v, stored, incoming, defs);
    let last_contacted_at = match &input.last_contacted_at {
        None if mode != WriteMode::Create => cur.and_then(|c| c.last_contacted_at),
        None => None,
        Some(x) => *x,
    };
    Some(LeadDraft {
        name: name?,
        email,
        phone,
        company,
        cnpj,
        position,
        source,
        status,
        owner_id,
        tags,
        custom_fields,
        cep,
        city,
        state,
        notes,
        last_contacted_at,
    })
}

fn normalize_tags(v: &mut Validator, list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for t in list {
        let t = t.trim().to_lowercase();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > MAX_TAG_LEN {
            v.add(
                "tags",
                "too_long",
                "Cada tag pode ter no máximo 60 caracteres",
            );
            continue;
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > MAX_TAGS {
        v.add("tags", "too_many", "No máximo 30 tags por lead");
    }
    out
}

/// Field types for custom field values (shared by validation and filters).
pub fn field_type_of(defs: &[CustomFieldDef], key: &str) -> Option<CustomFieldType> {
    defs.iter().find(|d| d.key == key).map(|d| d.field_type)
}

/// Registers the leads domain's jobs: CSV imports and rescoring.
pub fn register(r: &mut jtcrm_kernel::jobs::Registry) {
    r.register(import::KIND, import::run);
    r.register(scoring::RESCORE_JOB, scoring::run_rescore_job);
}
