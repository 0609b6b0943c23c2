//! The `document_templates`, `proposals` and `proposal_versions` tables.

pub mod template {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "document_templates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub kind: String,
        pub name: String,
        pub body: String,
        pub is_default: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod proposal {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "proposals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub number: String,
        pub title: String,
        pub opportunity_id: Uuid,
        pub lead_id: Option<Uuid>,
        pub owner_id: Option<Uuid>,
        pub template_id: Option<Uuid>,
        pub status: String,
        pub valid_until: Date,
        pub term_months: i32,
        pub items: Json,
        pub mrr_cents: i64,
        pub setup_cents: i64,
        pub tcv_cents: i64,
        pub notes: Option<String>,
        pub revision: i32,
        pub recipient_email: Option<String>,
        pub sent_at: Option<DateTimeUtc>,
        pub link_token_hash: Option<String>,
        pub link_expires_at: Option<DateTimeUtc>,
        pub link_revoked_at: Option<DateTimeUtc>,
        pub viewed_at: Option<DateTimeUtc>,
        pub viewed_ip: Option<String>,
        pub viewed_user_agent: Option<String>,
        pub decided_at: Option<DateTimeUtc>,
        pub decision_name: Option<String>,
        pub decision_cpf: Option<String>,
        pub decision_reason: Option<String>,
        pub decision_ip: Option<String>,
        pub decision_user_agent: Option<String>,
        pub decision_sha256: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "proposal_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub proposal_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i32,
        pub snapshot: Json,
        pub content: String,
        pub content_sha256: String,
        pub sent_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
