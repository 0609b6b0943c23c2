//! CSV reading rules of the import: encodings, delimiter detection, header normalisation and
//! the mapping of columns to lead fields (`Target`), and turning a row into a `LeadInput`.

use super::*;

// ---------- encoding, separator, headers ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// What Excel in Brazil writes when saving "CSV (separado por vírgulas)".
    Windows1252,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "windows-1252" | "cp1252" | "latin1" | "latin-1" | "iso-8859-1" | "ansi" => {
                Some(Encoding::Windows1252)
            }
            _ => None,
        }
    }

    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        }
    }
}

pub(super) fn delimiter_name(d: u8) -> &'static str {
    match d {
        b';' => ";",
        b'\t' => "\t",
        _ => ",",
    }
}

pub(super) fn parse_delimiter(s: &str) -> Option<u8> {
    match s {
        ";" => Some(b';'),
        "," => Some(b','),
        "\t" | "tab" | "\\t" | "TAB" => Some(b'\t'),
        _ => None,
    }
}

/// The separator of a header line: the most frequent of `;`, `,` and tab outside quotes (`;` wins
/// ties, as Excel pt-BR writes it); `,` when there is none (a single column).
pub fn detect_delimiter(line: &[u8]) -> u8 {
    let (mut semi, mut comma, mut tab, mut quoted) = (0usize, 0usize, 0usize, false);
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => semi += 1,
            b',' if !quoted => comma += 1,
            b'\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if semi == 0 && comma == 0 && tab == 0 {
        b','
    } else if semi >= comma && semi >= tab {
        b';'
    } else if comma >= tab {
        b','
    } else {
        b'\t'
    }
}

/// The first line of `buf` with some content (not only blanks and separators).
pub(super) fn first_content_line(buf: &[u8]) -> &[u8] {
    buf.split(|&b| b == b'\n')
        .find(|l| {
            l.iter()
                .any(|b| !b.is_ascii_whitespace() && !matches!(b, b';' | b','))
        })
        .unwrap_or(&[])
}

pub(super) fn strip_bom(buf: &[u8]) -> &[u8] {
    buf.strip_prefix(BOM).unwrap_or(buf)
}

pub(super) fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// Lowercase, no accents, runs of punctuation and spaces as one space: `E-mail` → `e mail`.
pub(super) fn norm(s: &str) -> String {
    let folded = fold_for_search(s.trim());
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name,
    Email,
    Phone,
    Company,
    Cnpj,
    Position,
    City,
    State,
    Cep,
    Source,
    Status,
    Tags,
    Notes,
    /// A user id or e-mail (explicit mapping only).
    Owner,
    Custom(String),
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Name => "name".into(),
            Target::Email => "email".into(),
            Target::Phone => "phone".into(),
            Target::Company => "company".into(),
            Target::Cnpj => "cnpj".into(),
            Target::Position => "position".into(),
            Target::City => "city".into(),
            Target::State => "state".into(),
            Target::Cep => "cep".into(),
            Target::Source => "source".into(),
            Target::Status => "status".into(),
            Target::Tags => "tags".into(),
            Target::Notes => "notes".into(),
            Target::Owner => "owner".into(),
            Target::Custom(k) => format!("cf.{k}"),
        }
    }

    /// A standard field by its name or a pt-BR / English synonym (normalised with [`norm`]).
    pub(super) fn synonym(n: &str) -> Option<Target> {
        Some(match n {
            "name" | "nome" | "nome completo" | "contato" | "nome do contato" | "full name"
            | "lead" => Target::Name,
            "email" | "e mail" | "email address" | "e mail address" | "correio eletronico" => {
                Target::Email
            }
            "phone" | "telefone" | "celular" | "fone" | "tel" | "whatsapp" | "mobile"
            | "phone number" | "telefone celular" | "numero de telefone" => Target::Phone,
            "company" | "empresa" | "razao social" | "nome fantasia" | "organizacao"
            | "organization" | "company name" => Target::Company,
            "cnpj" => Target::Cnpj,
            "position" | "cargo" | "job title" | "title" | "funcao" => Target::Position,
            "city" | "cidade" | "municipio" => Target::City,
            "state" | "uf" | "estado" => Target::State,
            "cep" | "zip" | "zip code" | "postal code" | "codigo postal" => Target::Cep,
            "source" | "origem" | "fonte" | "lead source" => Target::Source,
            "status" | "situacao" => Target::Status,
            "tags" | "tag" | "etiquetas" | "marcadores" => Target::Tags,
            "notes" | "note" | "notas" | "nota" | "observacoes" | "observacao" | "obs"
            | "comentarios" => Target::Notes,
            _ => return None,
        })
    }

    pub(super) fn custom(key: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        defs.iter()
            .find(|d| d.key == key.trim())
            .map(|d| Target::Custom(d.key.clone()))
    }

    pub(super) fn custom_by_label(n: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        defs.iter()
            .find(|d| norm(&d.label) == n || norm(&d.key) == n)
            .map(|d| Target::Custom(d.key.clone()))
    }

    /// The field named by a `mapping` value: `email`, `owner`, `cf.<key>`, `custom_fields.<key>`, a
    /// synonym, or a custom field's label.
    pub fn from_mapping(v: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        let t = v.trim();
        if let Some(k) = t
            .strip_prefix("cf.")
            .or_else(|| t.strip_prefix("custom_fields."))
        {
            return Target::custom(k, defs);
        }
        let n = norm(t);
        if matches!(
            n.as_str(),
            "owner" | "owner id" | "owner email" | "responsavel"
        ) {
            return Some(Target::Owner);
        }
        Target::synonym(&n).or_else(|| Target::custom_by_label(&n, defs))
    }

    /// The field a header names by itself: `cf.<key>`, a synonym, or a custom field's label or key.
    pub fn from_header(h: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        let t = h.trim();
        // `get`, not `[..3]`: a header may start with a multi-byte letter ("Orçamento").
        if let Some(key) = t
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("cf."))
            .and(t.get(3..))
            .filter(|k| !k.is_empty())
        {
            return Target::custom(key, defs);
        }
        let n = norm(t);
        Target::synonym(&n).or_else(|| Target::custom_by_label(&n, defs))
    }
}

/// The target of each header: the explicit `mapping` first (`null` or `""` ignores the column),
/// then the header itself.
pub fn map_columns(
    headers: &[String],
    mapping: &BTreeMap<String, Option<String>>,
    defs: &[CustomFieldDef],
) -> Vec<Option<Target>> {
    let explicit: HashMap<String, Option<&str>> = mapping
        .iter()
        .map(|(k, v)| (norm(k), v.as_deref()))
        .collect();
    headers
        .iter()
        .map(|h| match explicit.get(&norm(h)) {
            Some(None) => None,
            Some(Some(v)) if v.trim().is_empty() => None,
            Some(Some(v)) => Target::from_mapping(v, defs),
            None => Target::from_header(h, defs),
        })
        .collect()
}

pub(super) fn columns_dto(headers: &[String], cols: &[Option<Target>]) -> Vec<ImportColumn> {
    headers
        .iter()
        .zip(cols)
        .map(|(h, t)| ImportColumn {
            header: h.clone(),
            field: t.as_ref().map(Target::name),
        })
        .collect()
}

/// A cell as typed: trimmed, and without the `'` that protects formulas in exports.
pub(super) fn clean(v: &str) -> &str {
    let t = v.trim();
    match t.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => t,
    }
}

/// The API body of a row (no default source) and the raw owner cell. For each field the first
/// non-empty column wins (e.g. `Telefone` then `Celular`); empty cells are absent, never clearing.
pub fn row_input(cols: &[Option<Target>], cells: &[String]) -> (LeadInput, Option<String>) {
    let mut input = LeadInput::default();
    let mut owner = None;
    let mut tags: Vec<String> = vec![];
    let mut custom = Map::new();
    for (target, raw) in cols.iter().zip(cells) {
        let Some(target) = target else { continue };
        let v = clean(raw);
        if v.is_empty() {
            continue;
        }
        let set = |slot: &mut Option<Option<String>>| {
            if slot.is_none() {
                *slot = Some(Some(v.to_string()));
            }
        };
        match target {
            Target::Name => set(&mut input.name),
            Target::Email => set(&mut input.email),
            Target::Phone => set(&mut input.phone),
            Target::Company => set(&mut input.company),
            Target::Cnpj => set(&mut input.cnpj),
            Target::Position => set(&mut input.position),
            Target::City => set(&mut input.city),
            Target::State => set(&mut input.state),
            Target::Cep => set(&mut input.cep),
            Target::Notes => set(&mut input.notes),
            Target::Source => {
                if input.source.is_none() {
                    let code = export::parse_source(v)
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| v.to_string());
                    input.source = Some(Some(code));
                }
            }
            Target::Status => {
                if input.status.is_none() {
                    let code = export::parse_status(v)
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| v.to_string());
                    input.status = Some(Some(code));
                }
            }
            Target::Tags => {
                let sep = if v.contains('|') { '|' } else { ',' };
                tags.extend(
                    v.split(sep)
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string),
                );
            }
            Target::Owner => {
                if owner.is_none() {
                    owner = Some(v.to_string());
                }
            }
            Target::Custom(k) => {
                if !custom.contains_key(k) {
                    custom.insert(k.clone(), Value::String(v.to_string()));
                }
            }
        }
    }
    if !tags.is_empty() {
        input.tags = Some(Some(tags));
    }
    if !custom.is_empty() {
        input.custom_fields = Some(Some(custom));
    }
    (input, owner)
}
