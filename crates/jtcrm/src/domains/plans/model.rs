//! The `plans` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub name: String,
    pub price_cents: i64,
    pub active: bool,
    pub max_users: Option<i64>,
    pub max_leads: Option<i64>,
    pub max_pipelines: Option<i64>,
    pub max_extensions: Option<i64>,
    pub max_automations: Option<i64>,
    pub api_rate_per_minute: Option<i64>,
    pub feature_telephony: bool,
    pub feature_chatbot: bool,
    pub feature_e_signature: bool,
    pub feature_erp_sync: bool,
    pub feature_whatsapp: bool,
    pub feature_api_access: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
