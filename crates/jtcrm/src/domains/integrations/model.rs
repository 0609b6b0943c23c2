//! The `integration_settings` table: one row per tenant and provider.

pub mod setting {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub provider: String,
        pub enabled: bool,
        /// Non-secret configuration (JSON object).
        pub config: Json,
        /// Secret fields, each value sealed with the kernel's `SecretBox` (JSON object).
        pub secrets: Json,
        /// SHA-256 (hex) of the webhook token.
        pub webhook_token_hash: Option<String>,
        /// What the provider's sync jobs remember between runs (e.g. the history poll's window).
        pub sync_state: Json,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
