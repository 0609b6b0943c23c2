//! The `pabx` provider: its configuration (validated, with defaults), its secret field (`token`)
//! and the suite API client built from them.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use jtcrm_integrations::pabx::dial::is_valid_area_code;
use jtcrm_integrations::pabx::suite::{SuiteClient, SuiteConfig};
use jtcrm_integrations::pabx::{Pabx, PabxError};
use jtcrm_kernel::error::Validator;
use serde_json::{Map, Value, json};

/// Secret fields of the provider.
pub const SECRET_FIELDS: &[&str] = &["token"];

/// The typed configuration of a tenant's PABX.
#[derive(Debug, Clone, PartialEq)]
pub struct PabxSettings {
    pub base_url: String,
    pub usuario: String,
    /// The tenant's DDD: dialling rule and numbers written without one.
    pub area_code: u8,
    /// Carrier selection code for long distance.
    pub csp: Option<u8>,
    /// A missed inbound call creates a callback task (the default follow-up).
    pub callback_task: bool,
    /// The callback task is due this many minutes after the call.
    pub callback_sla_minutes: i64,
    /// An inbound call from an unknown number creates a lead (source `inbound_call`).
    pub auto_create_leads: bool,
    /// Recordings are deleted this many days after the call (LGPD).
    pub recording_retention_days: i64,
    /// Scoring: an answered call of at least this many seconds of talk earns `answered_points`.
    pub answered_min_seconds: i64,
    pub answered_points: i32,
    /// Scoring: an inbound call from the lead earns `inbound_points`.
    pub inbound_points: i32,
}

const DEFAULTS: PabxSettings = PabxSettings {
    base_url: String::new(),
    usuario: String::new(),
    area_code: 11,
    csp: None,
    callback_task: true,
    callback_sla_minutes: 60,
    auto_create_leads: false,
    recording_retention_days: 90,
    answered_min_seconds: 30,
    answered_points: 5,
    inbound_points: 3,
};

impl PabxSettings {
    /// Reads a stored configuration; missing or unreadable keys take their defaults.
    pub fn from_config(c: &Map<String, Value>) -> Self {
        let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
        let i = |k: &str| c.get(k).and_then(Value::as_i64);
        let b = |k: &str| c.get(k).and_then(Value::as_bool);
        let d = DEFAULTS;
        PabxSettings {
            base_url: s("base_url").unwrap_or_default(),
            usuario: s("usuario").unwrap_or_default(),
            area_code: i("area_code")
                .and_then(|v| u8::try_from(v).ok())
                .unwrap_or(d.area_code),
            csp: i("csp").and_then(|v| u8::try_from(v).ok()),
            callback_task: b("callback_task").unwrap_or(d.callback_task),
            callback_sla_minutes: i("callback_sla_minutes").unwrap_or(d.callback_sla_minutes),
            auto_create_leads: b("auto_create_leads").unwrap_or(d.auto_create_leads),
            recording_retention_days: i("recording_retention_days")
                .unwrap_or(d.recording_retention_days),
            answered_min_seconds: i("answered_min_seconds").unwrap_or(d.answered_min_seconds),
            answered_points: i("answered_points")
                .and_then(|v| i32::try_from(v).ok())
                .unwrap_or(d.answered_points),
            inbound_points: i("inbound_points")
                .and_then(|v| i32::try_from(v).ok())
                .unwrap_or(d.inbound_points),
        }
    }

    pub fn to_config(&self) -> Map<String, Value> {
        let v = json!({
            "base_url": self.base_url, "usuario": self.usuario, "area_code": self.area_code,
            "csp": self.csp, "callback_task": self.callback_task,
            "callback_sla_minutes": self.callback_sla_minutes,
            "auto_create_leads": self.auto_create_leads,
            "recording_retention_days": self.recording_retention_days,
            "answered_min_seconds": self.answered_min_seconds,
            "answered_points": self.answered_points, "inbound_points": self.inbound_points,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The suite client for these settings and `token`.
    pub fn client(&self, token: &str) -> Result<Arc<dyn Pabx>, PabxError> {
        let mut config = SuiteConfig::new(
            self.base_url.clone(),
            self.usuario.clone(),
            token,
            self.area_code,
        );
        config.csp = self.csp;
        config.timeout = Duration::from_secs(10);
        Ok(Arc::new(SuiteClient::with_http_client(
            config,
            HTTP.clone(),
        )?))
    }
}

/// One connection pool for every tenant's PABX client.
static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
});

const KNOWN: &[&str] = &[
    "base_url",
    "usuario",
    "area_code",
    "csp",
    "callback_task",
    "callback_sla_minutes",
    "auto_create_leads",
    "recording_retention_days",
    "answered_min_seconds",
    "answered_points",
    "inbound_points",
];

/// Checks a configuration sent by an admin (fields under `config.`) and returns it normalised,
/// defaults filled in. `base_url` and `usuario` are required when `enabled`.
pub fn validate(v: &mut Validator, c: &Map<String, Value>, enabled: bool) -> Map<String, Value> {
    for k in c.keys() {
        if !KNOWN.contains(&k.as_str()) {
            v.add(
                &format!("config.{k}"),
                "unknown_field",
                "Campo desconhecido",
            );
        }
    }
    let mut out = DEFAULTS;
    let text = |v: &mut Validator, k: &str, max: usize| -> Option<String> {
        match c.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => v.optional_text(&format!("config.{k}"), Some(s), max),
            Some(_) => {
                v.add(&format!("config.{k}"), "invalid_type", "Deve ser um texto");
                None
            }
        }
    };
    if let Some(url) = text(v, "base_url", 300) {
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                out.base_url = url.trim_end_matches('/').to_owned();
            }
            _ => v.add(
                "config.base_url",
                "invalid_url",
                "Informe uma URL http(s), ex.: https://emnuvem.meupabxip.com.br/suite/api",
            ),
        }
    } else if enabled {
        v.add("config.base_url", "required", "Campo obrigatório");
    }
    match text(v, "usuario", 120) {
        Some(u) => out.usuario = u,
        None if enabled => v.add("config.usuario", "required", "Campo obrigatório"),
        None => {}
    }
    let int = |v: &mut Validator, k: &str, min: i64, max: i64| -> Option<i64> {
        match c.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => Some(i),
                _ => {
                    v.add(
                        &format!("config.{k}"),
                        "out_of_range",
                        &format!("Deve estar entre {min} e {max}"),
                    );
                    None
                }
            },
            Some(_) => {
                v.add(&format!("config.{k}"), "invalid_type", "Deve ser um número");
                None
            }
        }
    };
    let boolean = |v: &mut Validator, k: &str| -> Option<bool> {
        match c.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                v.add(
                    &format!("config.{k}"),
                    "invalid_type",
                    "Deve ser true ou false",
                );
                None
            }
        }
    };
    if let Some(ddd) = int(v, "area_code", 11, 99) {
        if is_valid_area_code(ddd as u8) {
            out.area_code = ddd as u8;
        } else {
            v.add("config.area_code", "invalid_ddd", "DDD inexistente");
        }
    }
    out.csp = int(v, "csp", 10, 99).map(|c| c as u8);
    if let Some(b) = boolean(v, "callback_task") {
        out.callback_task = b;
    }
    if let Some(m) = int(v, "callback_sla_minutes", 1, 7 * 24 * 60) {
        out.callback_sla_minutes = m;
    }
    if let Some(b) = boolean(v, "auto_create_leads") {
        out.auto_create_leads = b;
    }
    if let Some(d) = int(v, "recording_retention_days", 1, 3650) {
        out.recording_retention_days = d;
    }
    if let Some(s) = int(v, "answered_min_seconds", 0, 86_400) {
        out.answered_min_seconds = s;
    }
    if let Some(p) = int(v, "answered_points", -100, 100) {
        out.answered_points = p as i32;
    }
    if let Some(p) = int(v, "inbound_points", -100, 100) {
        out.inbound_points = p as i32;
    }
    out.to_config()
}
