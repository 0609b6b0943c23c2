//! Validated Brazilian value types (CPF, CNPJ incl. the 2026 alphanumeric form, phone, CEP, UF)
//! plus e-mail and slug, and the accent folding used for slugs and accent-insensitive search.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Which value a [`BrError`] is about, so one error type can serve every parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrField {
    Cpf,
    Cnpj,
    Phone,
    Cep,
    Uf,
    Email,
    Slug,
}

impl BrField {
    /// Short pt-BR label for the field, as shown to users.
    pub fn label(self) -> &'static str {
        match self {
            BrField::Cpf => "CPF",
            BrField::Cnpj => "CNPJ",
            BrField::Phone => "Telefone",
            BrField::Cep => "CEP",
            BrField::Uf => "UF",
            BrField::Email => "E-mail",
            BrField::Slug => "Slug",
        }
    }
}

/// Why a Brazilian value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrError {
    /// Characters or structure that cannot belong to the value (letters in a CPF, two `@`, a
    /// repeated-digit CPF/CNPJ, a mobile without the ninth digit, ...).
    Invalid(BrField),
    /// Wrong number of digits/characters once the mask is stripped.
    InvalidLength(BrField),
    /// CPF/CNPJ check digits do not match.
    InvalidChecksum(BrField),
    /// Phone DDD is not one of the 67 assigned area codes.
    InvalidAreaCode,
}

impl BrError {
    /// The field the error is about.
    pub fn field(self) -> BrField {
        match self {
            BrError::Invalid(f) | BrError::InvalidLength(f) | BrError::InvalidChecksum(f) => f,
            BrError::InvalidAreaCode => BrField::Phone,
        }
    }

    /// Stable machine-readable code. API clients key on this, so it is per field rather than
    /// per failure reason (except the DDD, which UIs highlight separately); never rename.
    pub fn code(&self) -> &'static str {
        if let BrError::InvalidAreaCode = self {
            return "invalid_area_code";
        }
        match self.field() {
            BrField::Cpf => "invalid_cpf",
            BrField::Cnpj => "invalid_cnpj",
            BrField::Phone => "invalid_phone",
            BrField::Cep => "invalid_cep",
            BrField::Uf => "invalid_uf",
            BrField::Email => "invalid_email",
            BrField::Slug => "invalid_slug",
        }
    }

    /// Short pt-BR message suitable for showing next to the form field.
    pub fn message_pt(&self) -> &'static str {
        match *self {
            BrError::InvalidAreaCode => "DDD inválido",
            BrError::InvalidLength(BrField::Cpf) => "CPF deve ter 11 dígitos",
            BrError::InvalidLength(BrField::Cnpj) => "CNPJ deve ter 14 caracteres",
            BrError::InvalidLength(BrField::Phone) => "Telefone deve ter DDD e 8 ou 9 dígitos",
            BrError::InvalidLength(BrField::Cep) => "CEP deve ter 8 dígitos",
            BrError::InvalidLength(BrField::Email) => "E-mail muito longo",
            BrError::InvalidLength(BrField::Slug) => "Slug deve ter entre 3 e 63 caracteres",
            BrError::InvalidChecksum(BrField::Cpf) => {
                "CPF inválido: dígito verificador não confere"
            }
            BrError::InvalidChecksum(BrField::Cnpj) => {
                "CNPJ inválido: dígito verificador não confere"
            }
            // Remaining combinations carry no extra information worth a dedicated message.
            BrError::Invalid(f) | BrError::InvalidLength(f) | BrError::InvalidChecksum(f) => {
                match f {
                    BrField::Cpf => "CPF inválido",
                    BrField::Cnpj => "CNPJ inválido",
                    BrField::Phone => "Telefone inválido",
                    BrField::Cep => "CEP inválido",
                    BrField::Uf => "UF inválida",
                    BrField::Email => "E-mail inválido",
                    BrField::Slug => "Slug inválido",
                }
            }
        }
    }
}

impl fmt::Display for BrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message_pt())
    }
}

impl std::error::Error for BrError {}

// ---------------------------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------------------------

/// Display/FromStr/AsRef, serde as the normalized string (deserializing goes through `parse`,
/// so invalid stored or submitted values fail loudly) and an OpenAPI string schema.
macro_rules! impl_value_traits {
    ($ty:ty, $desc:literal, $example:literal $(, $extra:ident($arg:expr))* $(,)?) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl FromStr for $ty {
            type Err = BrError;
            fn from_str(s: &str) -> Result<Self, BrError> {
                Self::parse(s)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.as_str().to_owned()
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($desc))
                    .examples([$example])
                    $(.$extra($arg))*
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {}
    };
}

/// Drops whitespace and the given mask separators, upper-casing ASCII letters. Any other
/// character is an error so that junk like "CPF: 123" or "12/34" is not silently accepted.
fn strip_mask(input: &str, field: BrField, separators: &[char]) -> Result<String, BrError> {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if c.is_ascii_alphanumeric() {
            // ASCII-only on purpose: Unicode uppercasing maps e.g. 'ß' to "SS", which would turn
            // garbage into something that looks like a valid alphanumeric CNPJ.
            out.push(c.to_ascii_uppercase());
        } else if !(c.is_whitespace() || separators.contains(&c)) {
            return Err(BrError::Invalid(field));
        }
    }
    Ok(out)
}

fn all_same(s: &str) -> bool {
    s.as_bytes().windows(2).all(|w| w[0] == w[1])
}

/// Receita Federal's modulus-11 check digit: `r = Σ vᵢ·wᵢ mod 11; r < 2 ? 0 : 11 − r`.
fn mod11_check_digit(values: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = values.iter().zip(weights).map(|(v, w)| v * w).sum();
    let r = sum % 11;
    if r < 2 { 0 } else { 11 - r }
}

// ---------------------------------------------------------------------------------------------
// CPF
// ---------------------------------------------------------------------------------------------

/// A CPF (individual taxpayer id), stored as its 11 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cpf(String);

impl Cpf {
    /// Accepts masked (`529.982.247-25`) or bare (`52998224725`) input.
    pub fn parse(input: &str) -> Result<Self, BrError> {
        const F: BrField = BrField::Cpf;
        let s = strip_mask(input, F, &['.', '-'])?;
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BrError::Invalid(F));
        }
        if s.len() != 11 {
            return Err(BrError::InvalidLength(F));
        }
        // Repeated digits satisfy the checksum but are never issued.
        if all_same(&s) {
            return Err(BrError::Invalid(F));
        }
        let v: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
        let dv1 = mod11_check_digit(&v[..9], &[10, 9, 8, 7, 6, 5, 4, 3, 2]);
        let dv2 = mod11_check_digit(&v[..10], &[11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
        if v[9] != dv1 || v[10] != dv2 {
            return Err(BrError::InvalidChecksum(F));
        }
        Ok(Cpf(s))
    }

    /// The 11 digits, no mask.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `000.000.000-00`.
    pub fn masked(&self) -> String {
        let s = &self.0;
        format!("{}.{}.{}-{}", &s[0..3], &s[3..6], &s[6..9], &s[9..11])
    }
}

impl_value_traits!(
    Cpf,
    "CPF; accepts masked or bare input, always returned as 11 digits",
    "52998224725"
);

// ---------------------------------------------------------------------------------------------
// CNPJ
// ---------------------------------------------------------------------------------------------

const CNPJ_DV1_WEIGHTS: [u32; 12] = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
const CNPJ_DV2_WEIGHTS: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];

/// A CNPJ (company taxpayer id), stored as its 14 uppercase characters. Since July 2026 the
/// first 12 may be letters (IN RFB 2.229/2024); the two check digits stay numeric.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cnpj(String);

impl Cnpj {
    /// Accepts masked (`12.ABC.345/01DE-35`) or bare input, in any letter case.
    pub fn parse(input: &str) -> Result<Self, BrError> {
        const F: BrField = BrField::Cnpj;
        let s = strip_mask(input, F, &['.', '/', '-'])?;
        if s.len() != 14 {
            return Err(BrError::InvalidLength(F));
        }
        let (body, dvs) = s.split_at(12);
        if !dvs.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BrError::Invalid(F));
        }
        // Repeated characters (00000000000000) pass the checksum but are never issued.
        if all_same(&s) {
            return Err(BrError::Invalid(F));
        }
        // ASCII − 48 keeps digits as-is and maps A..Z to 17..42, per NT COCAD 49/2024. (Some
        // public code uses A=10, which is wrong.) `strip_mask` already upper-cased letters.
        let mut v: Vec<u32> = body.bytes().map(|b| u32::from(b - b'0')).collect();
        let dv1 = mod11_check_digit(&v, &CNPJ_DV1_WEIGHTS);
        v.push(dv1);
        let dv2 = mod11_check_digit(&v, &CNPJ_DV2_WEIGHTS);
        let given: Vec<u32> = dvs.bytes().map(|b| u32::from(b - b'0')).collect();
        if given != [dv1, dv2] {
            return Err(BrError::InvalidChecksum(F));
        }
        Ok(Cnpj(s))
    }

    /// The 14 characters, uppercase, no mask.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `00.000.000/0000-00` (18 characters).
    pub fn masked(&self) -> String {
        let s = &self.0;
        format!(
            "{}.{}.{}/{}-{}",
            &s[0..2],
            &s[2..5],
            &s[5..8],
            &s[8..12],
            &s[12..14]
        )
    }
}

impl_value_traits!(
    Cnpj,
    "CNPJ, numeric or alphanumeric (2026); accepts masked or bare input in any case, \
     always returned as 14 uppercase characters",
    "11222333000181"
);

// ---------------------------------------------------------------------------------------------
// Phone
// ---------------------------------------------------------------------------------------------

/// The 67 assigned DDDs, matching libphonenumber's
/// `(?:[14689][1-9]|2[12478]|3[1-578]|5[13-5]|7[13-579])`.
fn is_valid_ddd(ddd: u8) -> bool {
    matches!(
        ddd,
        11..=19
            | 21
            | 22
            | 24
            | 27
            | 28
            | 31..=35
            | 37
            | 38
            | 41..=49
            | 51
            | 53..=55
            | 61..=69
            | 71
            | 73..=75
            | 77
            | 79
            | 81..=89
            | 91..=99
    )
}

/// A Brazilian landline or mobile number, stored in E.164 (`+5511987654321`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

impl Phone {
    /// Accepts `+55`/`55` country code, a trunk `0` before the DDD, and the usual masks:
    /// `+55 (11) 98765-4321`, `011 98765-4321`, `11.3456.7890`, `5511987654321`, ...
    pub fn parse(input: &str) -> Result<Self, BrError> {
        const F: BrField = BrField::Phone;
        let trimmed = input.trim();
        let (explicit_country, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let digits = strip_mask(rest, F, &['(', ')', '-', '.'])?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BrError::Invalid(F));
        }
        let mut national = digits.as_str();
        if explicit_country {
            // Only Brazilian numbers are supported; "+1 ..." is not silently reinterpreted.
            national = national.strip_prefix("55").ok_or(BrError::Invalid(F))?;
        } else if national.len() >= 12 {
            // A national number is at most 11 digits (12 with the trunk 0, which starts with
            // 0), so a leading 55 here must be the country code, never DDD 55.
            if let Some(rest) = national.strip_prefix("55") {
                national = rest;
            }
        }
        if let Some(rest) = national.strip_prefix('0') {
            national = rest;
        }
        if !(10..=11).contains(&national.len()) {
            return Err(BrError::InvalidLength(F));
        }
        let b = national.as_bytes();
        let ddd = (b[0] - b'0') * 10 + (b[1] - b'0');
        if !is_valid_ddd(ddd) {
            return Err(BrError::InvalidAreaCode);
        }
        // Landlines are [2-5] + 7 digits; mobiles 9 + 8 digits (ninth digit nationwide since
        // 2016), so an 8-digit number starting with 9 is an outdated mobile and is rejected.
        let subscriber_ok = match b.len() {
            10 => (b'2'..=b'5').contains(&b[2]),
            _ => b[2] == b'9',
        };
        if !subscriber_ok {
            return Err(BrError::Invalid(F));
        }
        Ok(Phone(format!("+55{national}")))
    }

    /// E.164, e.g. `+5511987654321`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// E.164 without the `+` (`5511987654321`), the form WhatsApp and most PABX APIs want.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// DDD + subscriber (`11987654321`).
    pub fn national_digits(&self) -> &str {
        &self.0[3..]
    }

    /// The two-digit area code, e.g. `11`.
    pub fn ddd(&self) -> u8 {
        let b = self.0.as_bytes();
        (b[3] - b'0') * 10 + (b[4] - b'0')
    }

    pub fn is_mobile(&self) -> bool {
        self.national_digits().len() == 11
    }

    /// `(11) 98765-4321` for mobiles, `(11) 3456-7890` for landlines.
    pub fn masked(&self) -> String {
        let n = self.national_digits();
        let (ddd, subscriber) = n.split_at(2);
        let (head, tail) = subscriber.split_at(subscriber.len() - 4);
        format!("({ddd}) {head}-{tail}")
    }
}

impl_value_traits!(
    Phone,
    "Brazilian phone; accepts +55/55, trunk 0 and masks, always returned in E.164",
    "+5511987654321"
);

// ---------------------------------------------------------------------------------------------
// CEP
// ---------------------------------------------------------------------------------------------

/// A CEP (postal code), stored as 8 digits. CEPs have no check digit, so only the format is
/// validated; existence needs an external lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cep(String);

impl Cep {
    /// Accepts `01310-100`, `01.310-100` or `01310100`.
    pub fn parse(input: &str) -> Result<Self, BrError> {
        const F: BrField = BrField::Cep;
        let s = strip_mask(input, F, &['.', '-'])?;
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BrError::Invalid(F));
        }
        if s.len() != 8 {
            return Err(BrError::InvalidLength(F));
        }
        Ok(Cep(s))
    }

    /// The 8 digits, no mask.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `00000-000`.
    pub fn masked(&self) -> String {
        format!("{}-{}", &self.0[..5], &self.0[5..])
    }
}

impl_value_traits!(
    Cep,
    "CEP; accepts masked or bare input, always returned as 8 digits",
    "01310100"
);

// ---------------------------------------------------------------------------------------------
// UF
// ---------------------------------------------------------------------------------------------

/// One of the 26 states or the Distrito Federal.
// Upper-case variants read like the official abbreviations used everywhere in Brazil.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Uf {
    AC,
    AL,
    AP,
    AM,
    BA,
    CE,
    DF,
    ES,
    GO,
    MA,
    MT,
    MS,
    MG,
    PA,
    PB,
    PR,
    PE,
    PI,
    RJ,
    RN,
    RS,
    RO,
    RR,
    SC,
    SP,
    SE,
    TO,
}

impl Uf {
    pub const ALL: [Uf; 27] = [
        Uf::AC,
        Uf::AL,
        Uf::AP,
        Uf::AM,
        Uf::BA,
        Uf::CE,
        Uf::DF,
        Uf::ES,
        Uf::GO,
        Uf::MA,
        Uf::MT,
        Uf::MS,
        Uf::MG,
        Uf::PA,
        Uf::PB,
        Uf::PR,
        Uf::PE,
        Uf::PI,
        Uf::RJ,
        Uf::RN,
        Uf::RS,
        Uf::RO,
        Uf::RR,
        Uf::SC,
        Uf::SP,
        Uf::SE,
        Uf::TO,
    ];

    /// Case-insensitive two-letter abbreviation, surrounding whitespace ignored.
    pub fn parse(input: &str) -> Result<Self, BrError> {
        let s = input.trim();
        Uf::ALL
            .into_iter()
            .find(|uf| uf.as_str().eq_ignore_ascii_case(s))
            .ok_or(BrError::Invalid(BrField::Uf))
    }

    /// Uppercase abbreviation, e.g. `SP`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Uf::AC => "AC",
            Uf::AL => "AL",
            Uf::AP => "AP",
            Uf::AM => "AM",
            Uf::BA => "BA",
            Uf::CE => "CE",
            Uf::DF => "DF",
            Uf::ES => "ES",
            Uf::GO => "GO",
            Uf::MA => "MA",
            Uf::MT => "MT",
            Uf::MS => "MS",
            Uf::MG => "MG",
            Uf::PA => "PA",
            Uf::PB => "PB",
            Uf::PR => "PR",
            Uf::PE => "PE",
            Uf::PI => "PI",
            Uf::RJ => "RJ",
            Uf::RN => "RN",
            Uf::RS => "RS",
            Uf::RO => "RO",
            Uf::RR => "RR",
            Uf::SC => "SC",
            Uf::SP => "SP",
            Uf::SE => "SE",
            Uf::TO => "TO",
        }
    }
}

impl_value_traits!(
    Uf,
    "Brazilian state abbreviation; case-insensitive on input, returned uppercase",
    "SP",
    enum_values(Some(Uf::ALL.iter().map(|uf| uf.as_str()))),
);

// ---------------------------------------------------------------------------------------------
// E-mail
// ---------------------------------------------------------------------------------------------

const EMAIL_MAX_LEN: usize = 254;
const EMAIL_LOCAL_MAX_LEN: usize = 64;
const DNS_LABEL_MAX_LEN: usize = 63;

/// An e-mail address, trimmed and lower-cased. The check is deliberately practical (what real
/// mailboxes look like), not full RFC 5322: quoted local parts, IP-literal domains and
/// non-ASCII addresses are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

fn is_email_local_char(c: char) -> bool {
    // RFC 5322 `atext` plus the dot; the dot's placement is checked separately.
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-.".contains(c)
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= DNS_LABEL_MAX_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, BrError> {
        const F: BrField = BrField::Email;
        // ASCII lowercasing only: Unicode case mapping could turn look-alikes (e.g. the Kelvin
        // sign) into ASCII letters and make a bogus address pass.
        let s = input.trim().to_ascii_lowercase();
        if s.len() > EMAIL_MAX_LEN {
            return Err(BrError::InvalidLength(F));
        }
        let (local, domain) = s.split_once('@').ok_or(BrError::Invalid(F))?;
        if local.is_empty() || domain.contains('@') {
            return Err(BrError::Invalid(F));
        }
        if local.len() > EMAIL_LOCAL_MAX_LEN {
            return Err(BrError::InvalidLength(F));
        }
        if !local.chars().all(is_email_local_char)
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(BrError::Invalid(F));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let tld_ok = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_lowercase()));
        if labels.len() < 2 || !tld_ok || !labels.iter().all(|l| is_dns_label(l)) {
            return Err(BrError::Invalid(F));
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`, e.g. `example.com.br`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or("", |(l, _)| l)
    }
}

impl_value_traits!(
    Email,
    "E-mail address; trimmed and returned lower-cased",
    "contato@provedor.com.br",
    format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
);

// ---------------------------------------------------------------------------------------------
// Slug
// ---------------------------------------------------------------------------------------------

const SLUG_MIN_LEN: usize = 3;
const SLUG_MAX_LEN: usize = DNS_LABEL_MAX_LEN;
/// `slugify` leaves headroom below the DNS limit so callers can append a uniqueness suffix
/// (`-2`, `-x7k`) and still have a valid slug.
const SLUGIFY_MAX_LEN: usize = 50;
/// Appended when a name yields fewer than 3 usable characters ("TI" → `ti-crm`), or used alone
/// when it yields none ("***" → `crm`), so `slugify` always returns a valid [`Slug`].
const SLUGIFY_FILLER: &str = "crm";

/// A DNS-label-safe identifier (tenant subdomains, URLs): 3–63 chars of `[a-z0-9-]`, not
/// starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// Trims whitespace but does not lowercase: a slug is an identifier the user chose, so
    /// `Acme` is reported as an error rather than silently becoming a different string.
    pub fn parse(input: &str) -> Result<Self, BrError> {
        const F: BrField = BrField::Slug;
        let s = input.trim();
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(BrError::Invalid(F));
        }
        if !(SLUG_MIN_LEN..=SLUG_MAX_LEN).contains(&s.len()) {
            return Err(BrError::InvalidLength(F));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(BrError::Invalid(F));
        }
        Ok(Slug(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl_value_traits!(
    Slug,
    "DNS-label identifier: 3-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
    "provedor-sao-joao"
);

/// Turns a display name into a slug candidate: "Provedor São João Ltda." → `provedor-sao-joao-ltda`.
///
/// Accents are folded as in [`fold_for_search`], every run of other characters becomes a single
/// `-`, and edge dashes are trimmed. The result is cut to 50 characters to leave room for a
/// uniqueness suffix. Names yielding fewer than 3 characters get `-crm` appended (`ti-crm`),
/// and names yielding nothing become `crm`, so the result always passes [`Slug::parse`].
/// Uniqueness is the caller's job.
pub fn slugify(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(SLUGIFY_MAX_LEN));
    let mut pending_dash = false;
    for c in folded_chars(name) {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
            if out.len() >= SLUGIFY_MAX_LEN {
                break;
            }
        } else {
            pending_dash = true;
        }
    }
    // Only ASCII is ever pushed, so byte length == char count and truncation is safe.
    out.truncate(SLUGIFY_MAX_LEN);
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str(SLUGIFY_FILLER);
    } else if out.len() < SLUG_MIN_LEN {
        out.push('-');
        out.push_str(SLUGIFY_FILLER);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Accent folding
// ---------------------------------------------------------------------------------------------

/// Lowercases and strips Portuguese accents so "João" matches "joao" in searches. Other
/// characters (spaces, punctuation, non-Latin letters) are kept as they are.
pub fn fold_for_search(s: &str) -> String {
    folded_chars(s).collect()
}

fn folded_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars()
        .flat_map(char::to_lowercase)
        // Decomposed input (NFD, common from macOS) carries accents as combining marks;
        // dropping them folds "a\u{303}" the same way as the precomposed "ã".
        .filter(|c| !('\u{0300}'..='\u{036F}').contains(c))
        .map(strip_accent)
}

/// Expects lowercase input (callers lowercase first, which also covers the uppercase forms).
fn strip_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    // ---- errors ------------------------------------------------------------------------------

    #[test]
    fn error_codes_and_messages() {
        assert_eq!(BrError::Invalid(BrField::Cnpj).code(), "invalid_cnpj");
        assert_eq!(
            BrError::InvalidChecksum(BrField::Cnpj).code(),
            "invalid_cnpj"
        );
        assert_eq!(BrError::InvalidLength(BrField::Cpf).code(), "invalid_cpf");
        assert_eq!(BrError::InvalidAreaCode.code(), "invalid_area_code");
        assert_eq!(BrError::Invalid(BrField::Phone).code(), "invalid_phone");
        assert_eq!(BrError::Invalid(BrField::Cep).code(), "invalid_cep");
        assert_eq!(BrError::Invalid(BrField::Uf).code(), "invalid_uf");
        assert_eq!(BrError::Invalid(BrField::Email).code(), "invalid_email");
        assert_eq!(BrError::Invalid(BrField::Slug).code(), "invalid_slug");

        assert_eq!(
            BrError::Invalid(BrField::Cnpj).message_pt(),
            "CNPJ inválido"
        );
        assert_eq!(BrError::InvalidAreaCode.message_pt(), "DDD inválido");
        assert_eq!(BrError::Invalid(BrField::Uf).message_pt(), "UF inválida");
        assert_eq!(
            BrError::InvalidLength(BrField::Uf).message_pt(),
            "UF inválida"
        );
        assert_eq!(
            BrError::InvalidChecksum(BrField::Cep).message_pt(),
            "CEP inválido"
        );
        assert_eq!(BrError::InvalidAreaCode.field(), BrField::Phone);
        assert_eq!(BrError::Invalid(BrField::Cpf).to_string(), "CPF inválido");
    }

    #[test]
    fn every_error_has_snake_case_code_and_message() {
        let fields = [
            BrField::Cpf,
            BrField::Cnpj,
            BrField::Phone,
            BrField::Cep,
            BrField::Uf,
            BrField::Email,
            BrField::Slug,
        ];
        let mut all = vec![BrError::InvalidAreaCode];
        for f in fields {
            all.extend([
                BrError::Invalid(f),
                BrError::InvalidLength(f),
                BrError::InvalidChecksum(f),
            ]);
            assert!(!f.label().is_empty());
        }
        for e in all {
            let code = e.code();
            assert!(code.starts_with("invalid_"), "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            assert!(!e.message_pt().is_empty());
        }
    }

    // ---- CPF ---------------------------------------------------------------------------------

    #[test]
    fn cpf_valid_masked_and_unmasked() {
        for input in [
            "529.982.247-25",
            "52998224725",
            " 529.982.247-25 ",
            "529 982 247 25",
            "529982247-25",
        ] {
            let cpf = Cpf::parse(input).unwrap();
            assert_eq!(cpf.as_str(), "52998224725", "{input}");
            assert_eq!(cpf.masked(), "529.982.247-25");
            assert_eq!(cpf.to_string(), "52998224725");
        }
        assert!(Cpf::parse("111.444.777-35").is_ok());
        assert!(Cpf::parse("123.456.789-09").is_ok());
        // Leading zeros are significant digits, not padding.
        assert_eq!(
            Cpf::parse("000.000.001-91").unwrap().as_str(),
            "00000000191"
        );
    }

    #[test]
    fn cpf_wrong_check_digits() {
        assert_eq!(
            Cpf::parse("529.982.247-26"),
            Err(BrError::InvalidChecksum(BrField::Cpf))
        );
        assert_eq!(
            Cpf::parse("529.982.247-15"),
            Err(BrError::InvalidChecksum(BrField::Cpf))
        );
        assert_eq!(
            Cpf::parse("12345678900"),
            Err(BrError::InvalidChecksum(BrField::Cpf))
        );
    }

    #[test]
    fn cpf_repeated_digits_rejected() {
        for d in '0'..='9' {
            let s: String = std::iter::repeat_n(d, 11).collect();
            assert_eq!(Cpf::parse(&s), Err(BrError::Invalid(BrField::Cpf)), "{s}");
        }
        assert_eq!(
            Cpf::parse("111.111.111-11"),
            Err(BrError::Invalid(BrField::Cpf))
        );
    }

    #[test]
    fn cpf_bad_length_and_characters() {
        let len = Err(BrError::InvalidLength(BrField::Cpf));
        assert_eq!(Cpf::parse(""), len);
        assert_eq!(Cpf::parse("5299822472"), len);
        assert_eq!(Cpf::parse("529982247250"), len);
        let bad = Err(BrError::Invalid(BrField::Cpf));
        assert_eq!(Cpf::parse("529.982.247-2A"), bad);
        assert_eq!(Cpf::parse("529/982/247-25"), bad);
        assert_eq!(Cpf::parse("CPF 52998224725"), bad);
        assert_eq!(Cpf::parse("５２９９８２２４７２５"), bad); // full-width digits
    }

    // ---- CNPJ --------------------------------------------------------------------------------

    #[test]
    fn cnpj_numeric_valid() {
        for input in [
            "11.222.333/0001-81",
            "11222333000181",
            " 11 222 333 0001 81 ",
        ] {
            let c = Cnpj::parse(input).unwrap();
            assert_eq!(c.as_str(), "11222333000181", "{input}");
            assert_eq!(c.masked(), "11.222.333/0001-81");
        }
        assert!(Cnpj::parse("11.444.777/0001-61").is_ok());
    }

    #[test]
    fn cnpj_alphanumeric_valid() {
        for input in [
            "12.ABC.345/01DE-35",
            "12ABC34501DE35",
            "12.abc.345/01de-35",
            "12abc34501de35",
            "12.aBc.345/01dE-35",
        ] {
            let c = Cnpj::parse(input).unwrap();
            assert_eq!(c.as_str(), "12ABC34501DE35", "{input}");
            let masked = c.masked();
            assert_eq!(masked, "12.ABC.345/01DE-35");
            assert_eq!(masked.len(), 18);
        }
        // Letters-only root and mixed patterns (check digits computed with ASCII − 48).
        assert!(Cnpj::parse("ABCDEFGHIJKL80").is_ok());
        assert!(Cnpj::parse("A1B2C3D4E5F668").is_ok());
        assert!(Cnpj::parse("ZZZZZZZZZZZZ62").is_ok());
    }

    #[test]
    fn cnpj_a_equals_10_variant_is_wrong() {
        // Same body as the SERPRO example, but check digits as computed by the broken
        // "ASCII − 48 − 7" implementations would differ; make sure only 35 is accepted.
        for dv in 0..100 {
            let s = format!("12ABC34501DE{dv:02}");
            assert_eq!(Cnpj::parse(&s).is_ok(), dv == 35, "{s}");
        }
    }

    #[test]
    fn cnpj_wrong_check_digits() {
        let chk = Err(BrError::InvalidChecksum(BrField::Cnpj));
        assert_eq!(Cnpj::parse("11.222.333/0001-82"), chk);
        assert_eq!(Cnpj::parse("11.222.333/0001-91"), chk);
        assert_eq!(Cnpj::parse("12.ABC.345/01DE-36"), chk);
        assert_eq!(Cnpj::parse("12.ABD.345/01DE-35"), chk);
    }

    #[test]
    fn cnpj_all_equal_rejected() {
        let bad = Err(BrError::Invalid(BrField::Cnpj));
        assert_eq!(Cnpj::parse("00000000000000"), bad);
        assert_eq!(Cnpj::parse("00.000.000/0000-00"), bad);
        assert_eq!(Cnpj::parse("11111111111111"), bad);
        assert_eq!(Cnpj::parse("99.999.999/9999-99"), bad);
    }

    #[test]
    fn cnpj_bad_length() {
        let len = Err(BrError::InvalidLength(BrField::Cnpj));
        assert_eq!(Cnpj::parse(""), len);
        assert_eq!(Cnpj::parse("1122233300018"), len);
        assert_eq!(Cnpj::parse("112223330001811"), len);
        assert_eq!(Cnpj::parse("12.ABC.345/01DE-3"), len);
    }

    #[test]
    fn cnpj_letters_in_check_digits_or_bad_characters() {
        let bad = Err(BrError::Invalid(BrField::Cnpj));
        assert_eq!(Cnpj::parse("12.ABC.345/01DE-3A"), bad);
        assert_eq!(Cnpj::parse("12.ABC.345/01DE-AB"), bad);
        assert_eq!(Cnpj::parse("112223330001-8X"), bad);
        assert_eq!(Cnpj::parse("11_222_333/0001-81"), bad);
        assert_eq!(Cnpj::parse("11.222.333\\0001-81"), bad);
        assert_eq!(Cnpj::parse("12.ÁBC.345/01DE-35"), bad);
        // Unicode uppercasing would turn "ß" into "SS"; it must stay invalid.
        assert_eq!(Cnpj::parse("12ßBC34501DE3"), bad);
    }

    // ---- Phone -------------------------------------------------------------------------------

    #[test]
    fn phone_mobile_forms() {
        for input in [
            "+5511987654321",
            "+55 11 98765-4321",
            "+55 (11) 98765-4321",
            "5511987654321",
            "55 11 98765 4321",
            "11987654321",
            "(11) 98765-4321",
            "(11)98765-4321",
            "11 98765.4321",
            "011 98765-4321",
            "(011) 98765-4321",
            "011987654321",
            "+55 0 11 98765-4321",
            "55011987654321",
            "  11 9 8765-4321 ",
        ] {
            let p = Phone::parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(p.as_str(), "+5511987654321", "{input}");
            assert_eq!(p.digits(), "5511987654321");
            assert_eq!(p.national_digits(), "11987654321");
            assert_eq!(p.ddd(), 11);
            assert!(p.is_mobile());
            assert_eq!(p.masked(), "(11) 98765-4321");
            assert_eq!(p.to_string(), "+5511987654321");
        }
    }

    #[test]
    fn phone_landline_forms() {
        for input in [
            "+551134567890",
            "+55 (11) 3456-7890",
            "551134567890",
            "1134567890",
            "(11) 3456-7890",
            "011 3456-7890",
            "01134567890",
            "11.3456.7890",
        ] {
            let p = Phone::parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(p.as_str(), "+551134567890", "{input}");
            assert_eq!(p.national_digits(), "1134567890");
            assert!(!p.is_mobile());
            assert_eq!(p.masked(), "(11) 3456-7890");
        }
        for first in ['2', '3', '4', '5'] {
            assert!(Phone::parse(&format!("(21) {first}123-4567")).is_ok());
        }
    }

    #[test]
    fn phone_ddd_55_is_not_confused_with_country_code() {
        let p = Phone::parse("(55) 99876-5432").unwrap();
        assert_eq!(p.as_str(), "+5555998765432");
        assert_eq!(p.ddd(), 55);
        let p = Phone::parse("5532345678").unwrap();
        assert_eq!(p.as_str(), "+555532345678");
        let p = Phone::parse("555532345678").unwrap();
        assert_eq!(p.as_str(), "+555532345678");
        let p = Phone::parse("+55 55 99876-5432").unwrap();
        assert_eq!(p.ddd(), 55);
        assert!(p.is_mobile());
    }

    #[test]
    fn phone_other_ddds() {
        let p = Phone::parse("(99) 3456-7890").unwrap();
        assert_eq!(p.ddd(), 99);
        assert_eq!(p.masked(), "(99) 3456-7890");
        let p = Phone::parse("+55 48 99999-0000").unwrap();
        assert_eq!(p.ddd(), 48);
    }

    #[test]
    fn phone_invalid_ddd() {
        for input in [
            "(20) 98765-4321",
            "(23) 98765-4321",
            "(23) 3456-7890",
            "+55 20 3456-7890",
            "(10) 98765-4321",
            "(26) 98765-4321",
            "(29) 98765-4321",
            "(36) 98765-4321",
            "(39) 98765-4321",
            "(50) 98765-4321",
            "(52) 98765-4321",
            "(56) 98765-4321",
            "(60) 98765-4321",
            "(70) 98765-4321",
            "(72) 98765-4321",
            "(76) 98765-4321",
            "(78) 98765-4321",
            "(80) 98765-4321",
            "(90) 98765-4321",
            "0800 123 4567",
        ] {
            assert_eq!(
                Phone::parse(input),
                Err(BrError::InvalidAreaCode),
                "{input}"
            );
        }
    }

    #[test]
    fn exactly_67_ddds() {
        let valid: Vec<u8> = (0..=99).filter(|&d| is_valid_ddd(d)).collect();
        assert_eq!(valid.len(), 67);
        for d in [
            20, 23, 25, 26, 29, 30, 36, 39, 40, 50, 52, 56, 60, 70, 72, 76, 78, 80, 90,
        ] {
            assert!(!is_valid_ddd(d), "{d}");
        }
    }

    #[test]
    fn phone_mobile_without_ninth_digit_rejected() {
        let bad = Err(BrError::Invalid(BrField::Phone));
        assert_eq!(Phone::parse("(11) 9876-5432"), bad);
        assert_eq!(Phone::parse("+55 11 9876-5432"), bad);
        assert_eq!(Phone::parse("1198765432"), bad);
    }

    #[test]
    fn phone_nine_digits_not_starting_with_9_rejected() {
        let bad = Err(BrError::Invalid(BrField::Phone));
        assert_eq!(Phone::parse("(11) 88765-4321"), bad);
        assert_eq!(Phone::parse("(11) 38765-4321"), bad);
        assert_eq!(Phone::parse("+55 11 78765-4321"), bad);
    }

    #[test]
    fn phone_landline_bad_first_digit_rejected() {
        let bad = Err(BrError::Invalid(BrField::Phone));
        for first in ['0', '1', '6', '7', '8', '9'] {
            let input = format!("(11) {first}456-7890");
            assert_eq!(Phone::parse(&input), bad, "{input}");
        }
    }

    #[test]
    fn phone_bad_length_or_characters() {
        let len = Err(BrError::InvalidLength(BrField::Phone));
        assert_eq!(Phone::parse(""), len);
        assert_eq!(Phone::parse("98765-4321"), len); // no DDD
        assert_eq!(Phone::parse("3456-7890"), len);
        assert_eq!(Phone::parse("+55 11 987654-43210"), len);
        assert_eq!(Phone::parse("0011987654321"), len);
        let bad = Err(BrError::Invalid(BrField::Phone));
        assert_eq!(Phone::parse("+1 212 555 0100"), bad);
        assert_eq!(Phone::parse("+44 11 98765-4321"), bad);
        assert_eq!(Phone::parse("(11) 98765-432x"), bad);
        assert_eq!(Phone::parse("11 98765/4321"), bad);
        assert_eq!(Phone::parse("++55 11 98765-4321"), bad);
        assert_eq!(Phone::parse("11 +55 98765-4321"), bad);
    }

    // ---- CEP ---------------------------------------------------------------------------------

    #[test]
    fn cep_forms() {
        for input in ["01310-100", "01310100", "01.310-100", " 01310 100 "] {
            let c = Cep::parse(input).unwrap();
            assert_eq!(c.as_str(), "01310100", "{input}");
            assert_eq!(c.masked(), "01310-100");
        }
        assert_eq!(
            Cep::parse("0131-0100"),
            Ok(Cep("01310100".to_owned())),
            "only the digit count matters"
        );
        let len = Err(BrError::InvalidLength(BrField::Cep));
        assert_eq!(Cep::parse("01310-10"), len);
        assert_eq!(Cep::parse("01310-1000"), len);
        assert_eq!(Cep::parse(""), len);
        let bad = Err(BrError::Invalid(BrField::Cep));
        assert_eq!(Cep::parse("01310-10A"), bad);
        assert_eq!(Cep::parse("01310/100"), bad);
    }

    // ---- UF ----------------------------------------------------------------------------------

    #[test]
    fn uf_parse() {
        assert_eq!(Uf::parse("SP"), Ok(Uf::SP));
        assert_eq!(Uf::parse("sp"), Ok(Uf::SP));
        assert_eq!(Uf::parse(" rJ "), Ok(Uf::RJ));
        assert_eq!(Uf::parse("df").unwrap().as_str(), "DF");
        let bad = Err(BrError::Invalid(BrField::Uf));
        for input in ["", "S", "SPP", "XX", "BR", "São Paulo", "S P", "ZZ"] {
            assert_eq!(Uf::parse(input), bad, "{input}");
        }
    }

    #[test]
    fn uf_all_27_round_trip() {
        let names: HashSet<&str> = Uf::ALL.iter().map(|u| u.as_str()).collect();
        assert_eq!(names.len(), 27);
        for uf in Uf::ALL {
            assert_eq!(Uf::parse(uf.as_str()), Ok(uf));
            assert_eq!(Uf::parse(&uf.as_str().to_lowercase()), Ok(uf));
            assert_eq!(uf.to_string(), uf.as_str());
        }
        let expected =
            "AC AL AP AM BA CE DF ES GO MA MT MS MG PA PB PR PE PI RJ RN RS RO RR SC SP SE TO";
        for code in expected.split(' ') {
            assert!(names.contains(code), "{code}");
        }
    }

    // ---- Email -------------------------------------------------------------------------------

    #[test]
    fn email_valid() {
        let e = Email::parse("  Fulano.Silva+crm@Provedor.COM.br ").unwrap();
        assert_eq!(e.as_str(), "fulano.silva+crm@provedor.com.br");
        assert_eq!(e.domain(), "provedor.com.br");
        assert_eq!(e.local_part(), "fulano.silva+crm");
        for ok in [
            "a@b.co",
            "user_name@sub-domain.example.com",
            "x@xn--acougue-7xa.com.br",
            "o'neil@example.org",
            "1234@123.example.net",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn email_invalid() {
        let bad = Err(BrError::Invalid(BrField::Email));
        for input in [
            "",
            "plainaddress",
            "@example.com",
            "user@",
            "user@localhost",
            "user@@example.com",
            "a@b@example.com",
            "user name@example.com",
            "user@exa mple.com",
            "user@example.c",
            "user@example.c0m",
            "user@example.123",
            "user@-example.com",
            "user@example-.com",
            "user@example..com",
            "user@.example.com",
            "user@example.com.",
            "user@exa_mple.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "us\"er@example.com",
            "usér@example.com",
            "user@exámple.com",
            "user@[192.168.0.1]",
            "user@example.com\n.br",
        ] {
            assert_eq!(Email::parse(input), bad, "{input:?}");
        }
    }

    #[test]
    fn email_lengths() {
        let local64 = "a".repeat(64);
        assert!(Email::parse(&format!("{local64}@example.com")).is_ok());
        assert_eq!(
            Email::parse(&format!("a{local64}@example.com")),
            Err(BrError::InvalidLength(BrField::Email))
        );
        let label = "b".repeat(63);
        assert!(Email::parse(&format!("a@{label}.com")).is_ok());
        assert_eq!(
            Email::parse(&format!("a@b{label}.com")),
            Err(BrError::Invalid(BrField::Email))
        );
        // 254 total is the limit.
        let domain = format!(
            "{}.{}.{}.com",
            "c".repeat(63),
            "d".repeat(63),
            "e".repeat(57)
        );
        let at_limit = format!("{}@{domain}", "a".repeat(254 - 1 - domain.len()));
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        let over = format!("a{at_limit}");
        assert_eq!(
            Email::parse(&over),
            Err(BrError::InvalidLength(BrField::Email))
        );
    }

    // ---- Slug --------------------------------------------------------------------------------

    #[test]
    fn slug_valid() {
        for ok in [
            "abc",
            "acme",
            "provedor-sao-joao",
            "a1-b2",
            "123",
            "xn--foo",
            &"a".repeat(63),
        ] {
            assert_eq!(Slug::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(Slug::parse("  acme ").unwrap().as_str(), "acme");
    }

    #[test]
    fn slug_invalid() {
        let bad = Err(BrError::Invalid(BrField::Slug));
        for input in [
            "Acme", "ACME", "acme_co", "acme.co", "acme co", "-acme", "acme-", "são", "ac/me",
        ] {
            assert_eq!(Slug::parse(input), bad, "{input}");
        }
        let len = Err(BrError::InvalidLength(BrField::Slug));
        assert_eq!(Slug::parse(""), len);
        assert_eq!(Slug::parse("ab"), len);
        assert_eq!(Slug::parse(&"a".repeat(64)), len);
    }

    // ---- slugify / fold ----------------------------------------------------------------------

    #[test]
    fn slugify_examples() {
        assert_eq!(slugify("Provedor São João Ltda."), "provedor-sao-joao-ltda");
        assert_eq!(slugify("  JT Telecom  "), "jt-telecom");
        assert_eq!(
            slugify("Açougue & Cia — Filial Nº 2"),
            "acougue-cia-filial-n-2"
        );
        assert_eq!(
            slugify("ÁÀÂÃÄ ÉÈÊË ÍÌÎÏ ÓÒÔÕÖ ÚÙÛÜ Ç Ñ"),
            "aaaaa-eeee-iiii-ooooo-uuuu-c-n"
        );
        assert_eq!(slugify("--a--b--"), "a-b");
        assert_eq!(slugify("--a--"), "a-crm");
        assert_eq!(slugify("Fibra_Net.com"), "fibra-net-com");
        assert_eq!(slugify("Nu\u{303}ncio"), "nuncio"); // NFD input
    }

    #[test]
    fn slugify_short_and_empty_are_padded() {
        assert_eq!(slugify("TI"), "ti-crm");
        assert_eq!(slugify("X"), "x-crm");
        assert_eq!(slugify(""), "crm");
        assert_eq!(slugify("***"), "crm");
        assert_eq!(slugify("東京"), "crm");
        assert_eq!(slugify("abc"), "abc");
    }

    #[test]
    fn slugify_truncates_to_50_without_trailing_dash() {
        let long = "a".repeat(80);
        assert_eq!(slugify(&long), "a".repeat(50));
        // Cut lands right after a word: no dangling dash.
        let name = format!("{} {}", "b".repeat(50), "c".repeat(10));
        assert_eq!(slugify(&name), "b".repeat(50));
        // Cut lands right after the separator: the dangling dash is trimmed.
        let name = format!("{} {}", "b".repeat(49), "c".repeat(10));
        assert_eq!(slugify(&name), "b".repeat(49));
        let name = format!("{} {}", "b".repeat(48), "c".repeat(10));
        assert_eq!(slugify(&name), format!("{}-c", "b".repeat(48)));
    }

    #[test]
    fn slugify_output_is_always_a_valid_slug() {
        for name in [
            "Provedor São João Ltda.",
            "",
            "a",
            "ab",
            "é",
            "!!!",
            "Ω",
            "  -- ",
            "TELECOM",
            "x y z",
            &"ção ".repeat(40),
            &"z".repeat(200),
        ] {
            let s = slugify(name);
            assert!(Slug::parse(&s).is_ok(), "{name:?} -> {s:?}");
            assert!(s.len() <= 50);
        }
    }

    #[test]
    fn fold_for_search_examples() {
        assert_eq!(fold_for_search("João"), "joao");
        assert_eq!(fold_for_search("SÃO PAULO"), "sao paulo");
        assert_eq!(fold_for_search("Açaí Ñandú"), "acai nandu");
        assert_eq!(
            fold_for_search("ÁÀÂÃÄ éèêë ÍÌÎÏ óòôõö ÚÙÛÜ Çç"),
            "aaaaa eeee iiii ooooo uuuu cc"
        );
        assert_eq!(fold_for_search("Jo\u{0061}\u{0303}o"), "joao");
        assert_eq!(
            fold_for_search("R. 7 de Setembro, 123"),
            "r. 7 de setembro, 123"
        );
        assert_eq!(fold_for_search(""), "");
    }

    // ---- serde / traits ----------------------------------------------------------------------

    #[test]
    fn serde_round_trip_normalizes() {
        let cnpj: Cnpj = serde_json::from_str("\"12.abc.345/01de-35\"").unwrap();
        assert_eq!(serde_json::to_string(&cnpj).unwrap(), "\"12ABC34501DE35\"");
        let cpf: Cpf = serde_json::from_str("\"529.982.247-25\"").unwrap();
        assert_eq!(serde_json::to_string(&cpf).unwrap(), "\"52998224725\"");
        let phone: Phone = serde_json::from_str("\"(11) 98765-4321\"").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+5511987654321\"");
        let cep: Cep = serde_json::from_str("\"01310-100\"").unwrap();
        assert_eq!(serde_json::to_string(&cep).unwrap(), "\"01310100\"");
        let uf: Uf = serde_json::from_str("\"sp\"").unwrap();
        assert_eq!(serde_json::to_string(&uf).unwrap(), "\"SP\"");
        let email: Email = serde_json::from_str("\"A@B.COM\"").unwrap();
        assert_eq!(serde_json::to_string(&email).unwrap(), "\"a@b.com\"");
        let slug: Slug = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&slug).unwrap(), "\"acme\"");
    }

    #[test]
    fn serde_rejects_invalid() {
        let err = serde_json::from_str::<Cnpj>("\"00000000000000\"").unwrap_err();
        assert!(err.to_string().contains("CNPJ inválido"), "{err}");
        assert!(serde_json::from_str::<Cpf>("\"111.111.111-11\"").is_err());
        let err = serde_json::from_str::<Phone>("\"(20) 98765-4321\"").unwrap_err();
        assert!(err.to_string().contains("DDD inválido"), "{err}");
        assert!(serde_json::from_str::<Cep>("\"123\"").is_err());
        assert!(serde_json::from_str::<Uf>("\"XX\"").is_err());
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
        assert!(serde_json::from_str::<Slug>("\"Acme\"").is_err());
        assert!(
            serde_json::from_str::<Cpf>("52998224725").is_err(),
            "numbers are not accepted"
        );
    }

    #[test]
    fn from_str_display_and_hash() {
        let a: Cnpj = "11.222.333/0001-81".parse().unwrap();
        let b: Cnpj = "11222333000181".parse().unwrap();
        assert_eq!(a, b);
        let set: HashSet<Cnpj> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(a.to_string(), "11222333000181");
        assert_eq!(String::from(a), "11222333000181");
        let p: Phone = "011 3456-7890".parse().unwrap();
        assert_eq!(p.as_ref(), "+551134567890");
        assert_eq!("x".parse::<Uf>(), Err(BrError::Invalid(BrField::Uf)));
    }

    #[test]
    fn openapi_schemas_are_strings() {
        use utoipa::{PartialSchema, ToSchema};
        let json = serde_json::to_value(Uf::schema()).unwrap();
        assert_eq!(json["type"], "string");
        assert_eq!(json["enum"].as_array().map(Vec::len), Some(27));
        let json = serde_json::to_value(Email::schema()).unwrap();
        assert_eq!(json["format"], "email");
        let json = serde_json::to_value(Cnpj::schema()).unwrap();
        assert_eq!(json["type"], "string");
        assert_eq!(Cnpj::name(), "Cnpj");
    }
}
