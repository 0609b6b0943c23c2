//! The telecom product catalog: what a tenant sells, with its default monthly and setup prices.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
    };
}

string_enum!(
    /// What kind of telecom product or service this is.
    ProductCategory {
        DedicatedInternet => "dedicated_internet", Broadband => "broadband", Voip => "voip",
        CloudPabx => "cloud_pabx", SipTrunk => "sip_trunk", Mobile => "mobile", Equipment => "equipment",
        Service => "service", Other => "other",
    }
);

string_enum!(
    /// `monthly`: recurring (`monthly_price_cents` per month, plus an optional one-off setup);
    /// `one_time`: sold once (`setup_price_cents` is the price; `monthly_price_cents` is 0).
    Billing { Monthly => "monthly", OneTime => "one_time" }
);

string_enum!(
    /// Brazilian tax treatment: `scm` (telecom service, ICMS), `sva` (value-added service, ISS), `other`.
    TaxClass { Scm => "scm", Sva => "sva", Other => "other" }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000040", "name": "Link Dedicado 100 Mbps", "sku": "LD-100",
    "category": "dedicated_internet", "billing": "monthly", "monthly_price_cents": 120000,
    "setup_price_cents": 50000, "tax_class": "scm", "active": true, "description": null,
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 1
}))]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    /// Unique per tenant (case-insensitive), stored upper-case.
    pub sku: String,
    pub category: ProductCategory,
    pub billing: Billing,
    /// Default monthly price (BRL cents) of a line with this product.
    pub monthly_price_cents: i64,
    /// Default one-off price (BRL cents): installation for `monthly`, the price for `one_time`.
    pub setup_price_cents: i64,
    pub tax_class: TaxClass,
    /// Inactive products cannot be added to deals; deals that already use them keep their lines.
    pub active: bool,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// Body of `POST /api/products`, `PUT` and `PATCH /api/products/{id}`. `POST` and `PUT` need `name`,
/// `sku`, `category` and `billing`; `PATCH` keeps absent keys.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Link Dedicado 100 Mbps", "sku": "ld-100", "category": "dedicated_internet",
    "billing": "monthly", "monthly_price_cents": 120000, "setup_price_cents": 50000, "tax_class": "scm"
}))]
pub struct ProductInput {
    /// Not blank, at most 200 characters.
    #[schema(pattern = r"\S", max_length = 200)]
    pub name: Option<String>,
    /// Letters, digits, `-`, `_`, `.`, `/`; stored upper-case; unique in the company.
    #[schema(pattern = r"^\s*[A-Za-z0-9._/-]{1,60}\s*$")]
    pub sku: Option<String>,
    #[schema(value_type = Option<ProductCategory>)]
    pub category: Option<String>,
    #[schema(value_type = Option<Billing>)]
    pub billing: Option<String>,
    /// Default 0; must be 0 when `billing` is `one_time`.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub monthly_price_cents: Option<i64>,
    /// Default 0.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub setup_price_cents: Option<i64>,
    /// Default `scm` for internet categories, `other` otherwise.
    #[schema(value_type = Option<TaxClass>)]
    pub tax_class: Option<String>,
    /// Default `true`.
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub description: Option<Option<String>>,
}
