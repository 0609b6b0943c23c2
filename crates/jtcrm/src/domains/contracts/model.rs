//! The `contracts`, `contract_versions` and `contract_signers` tables.

pub mod contract {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "contracts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub number: String,
        pub title: String,
        pub proposal_id: Option<Uuid>,
        pub opportunity_id: Uuid,
        pub lead_id: Option<Uuid>,
        pub owner_id: Option<Uuid>,
        pub template_id: Option<Uuid>,
        pub status: String,
        pub items: Json,
        pub mrr_cents: i64,
        pub setup_cents: i64,
        pub tcv_cents: i64,
        pub term_months: i32,
        pub start_date: Option<Date>,
        pub early_termination_percent: i32,
        pub sla: String,
        pub equipment: Json,
        pub provider: String,
        pub revision: i32,
        pub generated_content: Option<String>,
        pub document_sha256: Option<String>,
        pub pdf_file_id: Option<Uuid>,
        pub signature_deadline: Option<Date>,
        pub sent_at: Option<DateTimeUtc>,
        pub signed_at: Option<DateTimeUtc>,
        pub activated_at: Option<DateTimeUtc>,
        pub cancelled_at: Option<DateTimeUtc>,
        pub cancel_reason: Option<String>,
        pub termination_fee_cents: Option<i64>,
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
    #[sea_orm(table_name = "contract_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub contract_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i32,
        pub snapshot: Json,
        pub content: String,
        pub document_sha256: String,
        pub pdf_file_id: Uuid,
        pub pdf_size_bytes: i64,
        pub sent_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod signer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contract_signers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub contract_id: Uuid,
        pub position: i32,
        pub name: String,
        pub email: Option<String>,
        pub cpf: Option<String>,
        pub status: String,
        pub link_token_hash: Option<String>,
        pub link_expires_at: Option<DateTimeUtc>,
        pub method: Option<String>,
        pub signed_at: Option<DateTimeUtc>,
        pub signed_name: Option<String>,
        pub signed_cpf: Option<String>,
        pub signed_ip: Option<String>,
        pub signed_user_agent: Option<String>,
        pub signed_sha256: Option<String>,
        pub evidence_file_id: Option<Uuid>,
        pub recorded_by: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
