//! The telecom product catalog: name, SKU (unique per tenant), category, billing, default monthly and
//! setup prices in cents, tax class. Deals copy what they need into their lines, so renaming,
//! repricing, deactivating or deleting a product never changes an existing deal.

#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod routes;

use chrono::Utc;
use jtcrm_types::br::fold_for_search;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::products::{Billing, Product, ProductCategory, ProductInput, TaxClass};
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use self::model::product;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::http::idempotency::Uncommitted;
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::sql;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::{self, WriteMode};
use jtcrm_types::money;

pub fn to_dto(m: product::Model) -> Product {
    Product {
        id: m.id,
        name: m.name,
        sku: m.sku,
        category: ProductCategory::parse(&m.category).unwrap_or(ProductCategory::Other),
        billing: Billing::parse(&m.billing).unwrap_or(Billing::Monthly),
        monthly_price_cents: m.monthly_price_cents,
        setup_price_cents: m.setup_price_cents,
        tax_class: TaxClass::parse(&m.tax_class).unwrap_or(TaxClass::Other),
        active: m.active,
        description: m.description,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// A live product of the tenant; otherwise `404`.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<product::Model> {
    product::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(AppError::not_found)
}

/// Live products of the tenant among `ids` (missing ones are simply absent).
pub async fn find_many<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> AppResult<Vec<Product>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Ok(product::Entity::find()
        .filter(product::Column::TenantId.eq(tenant_id))
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .filter(product::Column::DeletedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(to_dto)
        .collect())
}

/// A validated product (everything but identity and timestamps).
#[derive(Debug, Clone, PartialEq)]
struct Draft {
    name: String,
    sku: String,
    category: ProductCategory,
    billing: Billing,
    monthly_price_cents: i64,
    setup_price_cents: i64,
    tax_class: TaxClass,
    active: bool,
    description: Option<String>,
}

impl Draft {
    fn from_model(m: &product::Model) -> Self {
        let d = to_dto(m.clone());
        Draft {
            name: d.name,
            sku: d.sku,
            category: d.category,
            billing: d.billing,
            monthly_price_cents: d.monthly_price_cents,
            setup_price_cents: d.setup_price_cents,
            tax_class: d.tax_class,
            active: d.active,
            description: d.description,
        }
    }
}

fn default_tax_class(c: ProductCategory) -> TaxClass {
    match c {
        ProductCategory::DedicatedInternet | ProductCategory::Broadband => TaxClass::Scm,
        _ => TaxClass::Other,
    }
}

fn valid_sku(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 60
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn price(v: &mut Validator, field: &str, value: Option<i64>, current: i64) -> i64 {
    match value {
        None => current,
        Some(p) if (0..=money::MAX_UNIT_PRICE_CENTS).contains(&p) => p,
        Some(_) => {
            v.add(
                field,
                "out_of_range",
                "Valor em centavos entre 0 e 10000000000",
            );
            current
        }
    }
}

fn validate(
    v: &mut Validator,
    input: &ProductInput,
    cur: Option<&Draft>,
    mode: WriteMode,
) -> Option<Draft> {
    let keep = mode == WriteMode::Patch;
    let name = match (&input.name, cur) {
        (None, Some(c)) if keep => Some(c.name.clone()),
        (n, _) => v.required_text("name", n.as_deref(), 200),
    };
    let sku = match (&input.sku, cur) {
        (None, Some(c)) if keep => Some(c.sku.clone()),
        (s, _) => match v.required_text("sku", s.as_deref(), 60) {
            Some(s) if valid_sku(&s) => Some(s.to_ascii_uppercase()),
            Some(_) => {
                v.add(
                    "sku",
                    "invalid_sku",
                    "Use letras, dígitos, '-', '_', '.' ou '/' (até 60)",
                );
                None
            }
            None => None,
        },
    };
    let category = match (&input.category, cur) {
        (None, Some(c)) if keep => Some(c.category),
        (None, _) => {
            v.add("category", "required", "Campo obrigatório");
            None
        }
        (Some(s), _) => ProductCategory::parse(s.trim()).or_else(|| {
            v.add("category", "invalid_category", "Categoria inválida");
            None
        }),
    };
    let billing = match (&input.billing, cur) {
        (None, Some(c)) if keep => Some(c.billing),
        (None, _) => {
            v.add("billing", "required", "Campo obrigatório");
            None
        }
        (Some(s), _) => Billing::parse(s.trim()).or_else(|| {
            v.add("billing", "invalid_billing", "Use monthly ou one_time");
            None
        }),
    };
    let base = |f: fn(&Draft) -> i64| if keep { cur.map(f).unwrap_or(0) } else { 0 };
    let monthly = price(
        v,
        "monthly_price_cents",
        input.monthly_price_cents,
        base(|c| c.monthly_price_cents),
    );
    let setup = price(
        v,
        "setup_price_cents",
        input.setup_price_cents,
        base(|c| c.setup_price_cents),
    );
    // A product switched to one-off billing without a monthly price in the request drops the
    // stored monthly fee; only an explicit non-zero monthly price is refused.
    let monthly = if billing == Some(Billing::OneTime) && input.monthly_price_cents.is_none() {
        0
    } else {
        monthly
    };
    if billing == Some(Billing::OneTime) && monthly != 0 {
        v.add(
            "monthly_price_cents",
            "not_allowed",
            "Produtos de cobrança única têm preço em setup_price_cents; mensalidade deve ser 0",
        );
    }
    let tax_class = match (&input.tax_class, cur) {
        (None, Some(c)) if keep => c.tax_class,
        (None, _) => category.map(default_tax_class).unwrap_or(TaxClass::Other),
        (Some(s), _) => TaxClass::parse(s.trim()).unwrap_or_else(|| {
            v.add("tax_class", "invalid_tax_class", "Use scm, sva ou other");
            TaxClass::Other
        }),
    };
    let active = match (input.active, cur) {
        (Some(a), _) => a,
        (None, Some(c)) if mode != WriteMode::Create => c.active,
        (None, _) => true,
    };
    let description = match (&input.description, cur) {
        (None, Some(c)) if keep => c.description.clone(),
        (None, _) | (Some(None), _) => None,
        (Some(Some(s)), _) => v.optional_text("description", Some(s), 2_000),
    };
    Some(Draft {
        name: name?,
        sku: sku?,
        category: category?,
        billing: billing?,
        monthly_price_cents: monthly,
        setup_price_cents: setup,
        tax_class,
        active,
        description,
    })
}

fn sku_taken() -> AppError {
    AppError::conflict(ErrorCode::SkuTaken, "Já existe um produto com este SKU.")
        .with_context(json!({"field": "sku"}))
}

async fn sku_in_use<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    sku: &str,
    exclude: Option<Uuid>,
) -> AppResult<bool> {
    let mut q = product::Entity::find()
        .filter(product::Column::TenantId.eq(tenant_id))
        .filter(product::Column::SkuKey.eq(sku));
    if let Some(x) = exclude {
        q = q.filter(product::Column::Id.ne(x));
    }
    Ok(q.count(conn).await? > 0)
}

fn apply(m: &mut product::ActiveModel, d: &Draft) {
    m.name = Set(d.name.clone());
    m.name_sort = Set(fold_for_search(&d.name).chars().take(200).collect());
    m.sku = Set(d.sku.clone());
    m.sku_key = Set(Some(d.sku.clone()));
    m.category = Set(d.category.as_str().to_string());
    m.billing = Set(d.billing.as_str().to_string());
    m.monthly_price_cents = Set(d.monthly_price_cents);
    m.setup_price_cents = Set(d.setup_price_cents);
    m.tax_class = Set(d.tax_class.as_str().to_string());
    m.active = Set(d.active);
    m.description = Set(d.description.clone());
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: ProductInput,
) -> AppResult<Uncommitted<Product>> {
    let mut v = Validator::new();
    let draft = validate(&mut v, &input, None, WriteMode::Create);
    v.finish()?;
    let Some(d) = draft else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let txn = state.begin().await?;
    if sku_in_use(&*txn, ctx.tenant_id, &d.sku, None).await? {
        return Err(sku_taken());
    }
    let now = Utc::now();
    let id = Uuid::now_v7();
    let mut am = product::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
        ..Default::default()
    };
    apply(&mut am, &d);
    let m = match product::Entity::insert(am).exec_with_returning(&*txn).await {
        Ok(m) => m,
        Err(e) if is_sku_violation(&e) => return Err(sku_taken()),
        Err(e) => return Err(e.into()),
    };
    let dto = to_dto(m);
    let body = serde_json::to_value(&dto).map_err(AppError::internal)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "create", "product", id, audit::diff(&json!({}), &body)),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Product> {
    Ok(to_dto(find(&state.db, ctx.tenant_id, id).await?))
}

pub async fn update(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    if_match: Option<i32>,
    input: ProductInput,
    mode: WriteMode,
) -> AppResult<Product> {
    let txn = state.begin().await?;
    let current = find(&*txn, ctx.tenant_id, id).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let before = Draft::from_model(&current);
    let mut v = Validator::new();
    let draft = validate(&mut v, &input, Some(&before), mode);
    v.finish()?;
    let Some(d) = draft else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    if d.sku != before.sku && sku_in_use(&*txn, ctx.tenant_id, &d.sku, Some(id)).await? {
        return Err(sku_taken());
    }
    let before_dto = serde_json::to_value(to_dto(current.clone())).unwrap_or_default();
    let version = current.version;
    let mut am = current.into_active_model();
    apply(&mut am, &d);
    am.updated_at = Set(Utc::now());
    am.version = Set(version + 1);
    let updated = match crate::domains::optimistic_update::<product::Entity, _>(
        &*txn,
        am,
        product::Column::Version,
        version,
    )
    .await
    {
        Ok(m) => m,
        Err(e) if e.db_error().is_some_and(is_sku_violation) => return Err(sku_taken()),
        Err(e) => return Err(e),
    };
    let dto = to_dto(updated);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            "product",
            id,
            audit::diff(&before_dto, &after),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

fn is_sku_violation(e: &sea_orm::DbErr) -> bool {
    crate::migration::unique_violation(e).is_some_and(|v| v.is(&crate::migration::UX_PRODUCTS_SKU))
}

/// Soft delete: the product leaves the catalog and frees its SKU; deals keep their lines.
pub async fn delete(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find(&*txn, ctx.tenant_id, id).await?;
    store::soft_delete::<product::Entity>(txn, ctx, "product", current, |am| {
        am.sku_key = Set(None);
        am.active = Set(false);
    })
    .await
}

/// Query parameters of `GET /api/products`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    pub active: Option<bool>,
    pub category: Option<String>,
    pub billing: Option<String>,
    /// Case- and accent-insensitive search in name and SKU.
    pub q: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

fn bad(field: &str, msg: &str) -> AppError {
    AppError::validation(vec![FieldError::new(field, "invalid_value", msg)])
}

/// Products by name (then id), keyset-paginated.
pub async fn list(state: &AppState, ctx: &TenantCtx, q: ProductQuery) -> AppResult<Page<Product>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = product::Entity::find()
        .filter(product::Column::TenantId.eq(ctx.tenant_id))
        .filter(product::Column::DeletedAt.is_null());
    if let Some(a) = q.active {
        sel = sel.filter(product::Column::Active.eq(a));
    }
    if let Some(c) = q
        .category
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let c = ProductCategory::parse(c).ok_or_else(|| bad("category", "Categoria inválida"))?;
        sel = sel.filter(product::Column::Category.eq(c.as_str()));
    }
    if let Some(b) = q
        .billing
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let b = Billing::parse(b).ok_or_else(|| bad("billing", "Use monthly ou one_time"))?;
        sel = sel.filter(product::Column::Billing.eq(b.as_str()));
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if text.chars().count() > 100 {
            return Err(bad("q", "Busca com no máximo 100 caracteres"));
        }
        sel = sel.filter(
            Condition::any()
                .add(
                    Expr::col(product::Column::NameSort)
                        .like(sql::contains(&fold_for_search(text))),
                )
                .add(
                    Expr::col(product::Column::SkuKey)
                        .like(sql::contains(&text.to_ascii_uppercase())),
                ),
        );
    }
    let page = Keyset::asc([product::Column::NameSort, product::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(to_dto))
}
