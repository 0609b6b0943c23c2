//! Keyset pagination: the `limit` bounds of docs/design.md ("API conventions"), opaque cursors
//! ([`Cursor`]) and the one tail every list ends with ([`Keyset::paginate`]): total, keyset
//! condition, order, `limit + 1`, next cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use jtcrm_types::FieldError;
use jtcrm_types::dto::Page;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ColumnType, ConnectionTrait, EntityTrait, FromQueryResult, ModelTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Value,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

pub fn limit(requested: Option<u64>) -> Result<u64, AppError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::validation(vec![FieldError::new(
            "limit",
            "out_of_range",
            "limit deve estar entre 1 e 200",
        )])),
    }
}

/// An opaque list cursor: its parts joined by U+001F, in unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Vec<String>);

impl Cursor {
    pub fn encode(parts: &[&str]) -> String {
        URL_SAFE_NO_PAD.encode(parts.join("\u{1f}"))
    }

    /// Decodes a cursor sent by a client; `422 invalid_cursor` when it is not base64url of UTF-8.
    pub fn parse(raw: &str) -> AppResult<Cursor> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.as_bytes())
            .map_err(|_| Self::invalid())?;
        let s = String::from_utf8(bytes).map_err(|_| Self::invalid())?;
        Ok(Cursor(s.split('\u{1f}').map(str::to_string).collect()))
    }

    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The `422 invalid_cursor` answer to a cursor that does not decode or does not fit the list.
    pub fn invalid() -> AppError {
        AppError::validation(vec![FieldError::new(
            "cursor",
            "invalid_cursor",
            "Cursor inválido",
        )])
    }
}

/// The order of a list and what its cursor holds: the values of `columns` (the last one unique,
/// usually the id), all ascending or all descending, after an optional tag naming the sort (a cursor
/// of another sort is refused). Column values go in the cursor as text: timestamps in RFC 3339 with
/// nanoseconds, numbers and UUIDs as written, strings as they are.
pub struct Keyset<E: EntityTrait> {
    tag: Option<&'static str>,
    columns: Vec<E::Column>,
    descending: bool,
}

impl<E: EntityTrait> Keyset<E> {
    pub fn new(columns: impl IntoIterator<Item = E::Column>, descending: bool) -> Self {
        Keyset {
            tag: None,
            columns: columns.into_iter().collect(),
            descending,
        }
    }

    pub fn asc(columns: impl IntoIterator<Item = E::Column>) -> Self {
        Self::new(columns, false)
    }

    pub fn desc(columns: impl IntoIterator<Item = E::Column>) -> Self {
        Self::new(columns, true)
    }

    /// Puts `tag` (the sort's name) first in every cursor and requires it back.
    pub fn tagged(mut self, tag: &'static str) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Orders `sel` and keeps the rows after `cursor`.
    pub fn apply(&self, mut sel: Select<E>, cursor: Option<&str>) -> AppResult<Select<E>> {
        if let Some(raw) = cursor {
            sel = sel.filter(self.after(&Cursor::parse(raw)?)?);
        }
        let order = if self.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        for c in &self.columns {
            sel = sel.order_by(*c, order.clone());
        }
        Ok(sel)
    }

    /// `(columns) > (values)` (`<` descending) for the values in `cursor`.
    fn after(&self, cursor: &Cursor) -> AppResult<Expr> {
        let parts = cursor.parts();
        let values = match self.tag {
            Some(tag) if parts.first().map(String::as_str) != Some(tag) => {
                return Err(Cursor::invalid());
            }
            Some(_) => &parts[1..],
            None => parts,
        };
        if values.len() != self.columns.len() {
            return Err(Cursor::invalid());
        }
        let mut left = Vec::with_capacity(values.len());
        let mut right = Vec::with_capacity(values.len());
        for (c, v) in self.columns.iter().zip(values) {
            left.push(Expr::col((E::default(), *c)));
            right.push(Expr::val(key_value(c, v).ok_or_else(Cursor::invalid)?));
        }
        let (left, right) = if left.len() == 1 {
            (left.remove(0), right.remove(0))
        } else {
            (Expr::tuple(left), Expr::tuple(right))
        };
        Ok(if self.descending {
            left.lt(right)
        } else {
            left.gt(right)
        })
    }

    /// The cursor that continues after `row`.
    pub fn cursor_of(&self, row: &E::Model) -> String {
        let values: Vec<String> = self.columns.iter().map(|c| key_text(row.get(*c))).collect();
        let mut parts: Vec<&str> = self.tag.into_iter().collect();
        parts.extend(values.iter().map(String::as_str));
        Cursor::encode(&parts)
    }

    /// Cuts `rows`, fetched with `limit + 1`, to `limit`; the next cursor when there was more.
    pub fn finish(&self, mut rows: Vec<E::Model>, limit: u64) -> (Vec<E::Model>, Option<String>) {
        if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            let next = rows.last().map(|r| self.cursor_of(r));
            (rows, next)
        } else {
            (rows, None)
        }
    }
}

impl<E> Keyset<E>
where
    E: EntityTrait,
    E::Model: Sync,
{
    /// The page of `sel` after `cursor` in this order: the total of `sel` when asked (`true` or
    /// `Some(true)`), at most `limit` rows, and the cursor of the next page. The tail of every list.
    pub async fn paginate<C: ConnectionTrait>(
        &self,
        conn: &C,
        sel: Select<E>,
        cursor: Option<&str>,
        limit: u64,
        include_total: impl Into<Option<bool>>,
    ) -> AppResult<Page<E::Model>> {
        self.paginate_as::<E::Model, C>(conn, sel, cursor, limit, include_total)
            .await
    }

    /// [`Keyset::paginate`] for a selection of only some columns, read as `M` (the others take
    /// their defaults in the conversion).
    pub async fn paginate_as<M, C>(
        &self,
        conn: &C,
        sel: Select<E>,
        cursor: Option<&str>,
        limit: u64,
        include_total: impl Into<Option<bool>>,
    ) -> AppResult<Page<E::Model>>
    where
        M: FromQueryResult + Into<E::Model> + Send + Sync,
        C: ConnectionTrait,
    {
        let total = if include_total.into() == Some(true) {
            Some(sel.clone().count(conn).await?)
        } else {
            None
        };
        let rows = self
            .apply(sel, cursor)?
            .limit(limit + 1)
            .into_model::<M>()
            .all(conn)
            .await?;
        let (items, next_cursor) = self.finish(rows.into_iter().map(Into::into).collect(), limit);
        Ok(Page {
            items,
            next_cursor,
            total,
        })
    }
}

/// A cursor part as the value of column `c`, or `None` if it is not one.
fn key_value<C: ColumnTrait>(c: &C, s: &str) -> Option<Value> {
    Some(match c.def().get_column_type() {
        ColumnType::Uuid => Uuid::parse_str(s).ok()?.into(),
        ColumnType::Integer => s.parse::<i32>().ok()?.into(),
        ColumnType::BigInteger => s.parse::<i64>().ok()?.into(),
        ColumnType::TimestampWithTimeZone => DateTime::parse_from_rfc3339(s)
            .ok()?
            .with_timezone(&Utc)
            .into(),
        ColumnType::String(_) | ColumnType::Text => s.to_string().into(),
        _ => return None,
    })
}

/// A column value as a cursor part (the inverse of [`key_value`]).
fn key_text(v: Value) -> String {
    match v {
        Value::Uuid(Some(u)) => u.to_string(),
        Value::Int(Some(n)) => n.to_string(),
        Value::BigInt(Some(n)) => n.to_string(),
        Value::ChronoDateTimeUtc(Some(t)) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        Value::String(Some(s)) => s,
        other => {
            debug_assert!(false, "keyset column of unsupported type: {other:?}");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let raw = Cursor::encode(&["created_at", "2026-01-02T03:04:05.000000006Z", "x"]);
        let c = Cursor::parse(&raw).unwrap_or_else(|_| Cursor(vec![]));
        assert_eq!(
            c.parts(),
            ["created_at", "2026-01-02T03:04:05.000000006Z", "x"]
        );
        assert!(Cursor::parse("not base64!").is_err());
    }
}
