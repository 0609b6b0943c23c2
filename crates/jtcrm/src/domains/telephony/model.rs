//! The telephony tables: `telephony_extensions`, `calls`, `call_recordings`.

pub mod extension {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "telephony_extensions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub provider_id: Option<String>,
        pub number: String,
        pub name: String,
        pub user_id: Option<Uuid>,
        pub group_name: Option<String>,
        pub area_code: Option<i16>,
        pub record_calls: bool,
        pub blocked: bool,
        pub origin: String,
        pub synced_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod call {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calls")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub provider_call_id: Option<String>,
        pub direction: String,
        pub status: String,
        pub outcome: Option<String>,
        pub source: String,
        pub from_number: Option<String>,
        pub to_number: Option<String>,
        pub counterpart_e164: Option<String>,
        pub extension: Option<String>,
        pub user_id: Option<Uuid>,
        pub lead_id: Option<Uuid>,
        pub opportunity_id: Option<Uuid>,
        pub started_at: DateTimeUtc,
        pub duration_s: i32,
        pub talk_s: i32,
        pub wait_s: i32,
        pub sip_code: Option<i32>,
        pub hangup_reason: Option<String>,
        pub contact_name: Option<String>,
        pub transcription: Option<String>,
        pub summary: Option<String>,
        pub recording_urls: Json,
        pub error: Option<String>,
        pub callback_task_id: Option<Uuid>,
        pub ended_at: Option<DateTimeUtc>,
        pub completed_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod recording {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_recordings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub call_id: Uuid,
        pub position: i32,
        pub provider_url: String,
        pub status: String,
        pub file_key: Option<String>,
        pub content_type: Option<String>,
        pub size_bytes: Option<i64>,
        pub error: Option<String>,
        pub stored_at: Option<DateTimeUtc>,
        pub delete_after: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
