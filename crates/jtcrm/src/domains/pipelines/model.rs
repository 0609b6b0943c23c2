//! SeaORM entities of the pipelines domain.

pub mod pipeline {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipelines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
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

pub mod stage {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipeline_stages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub pipeline_id: Uuid,
        pub name: String,
        pub position: i32,
        pub probability: i32,
        pub kind: String,
        pub color: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod opportunity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opportunities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub pipeline_id: Uuid,
        pub stage_id: Uuid,
        pub lead_id: Option<Uuid>,
        pub owner_id: Option<Uuid>,
        pub title: String,
        pub title_sort: String,
        pub status: String,
        pub lost_reason: Option<String>,
        pub expected_close_date: Option<Date>,
        pub probability: i32,
        pub probability_overridden: bool,
        pub term_months: i32,
        pub value_cents: i64,
        pub mrr_cents: i64,
        pub setup_cents: i64,
        pub tcv_cents: i64,
        pub position: i64,
        pub notes: Option<String>,
        pub stage_entered_at: DateTimeUtc,
        pub closed_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opportunity_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub opportunity_id: Uuid,
        pub position: i32,
        pub product_id: Uuid,
        pub product_name: String,
        pub sku: String,
        pub billing: String,
        pub quantity: i32,
        pub monthly_price_cents: i64,
        pub setup_price_cents: i64,
        pub discount_bp: i32,
        pub monthly_total_cents: i64,
        pub setup_total_cents: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opportunity_stage_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub opportunity_id: Uuid,
        pub pipeline_id: Uuid,
        pub event: String,
        pub from_stage_id: Option<Uuid>,
        pub from_stage_name: Option<String>,
        pub to_stage_id: Uuid,
        pub to_stage_name: String,
        pub from_status: Option<String>,
        pub to_status: String,
        pub lost_reason: Option<String>,
        pub seconds_in_from_stage: Option<i64>,
        pub actor_id: Option<Uuid>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Per `(stage, owner)` sums of the live deals, kept by database triggers on `opportunities`
/// (migration 000008); `owner_key` is the nil UUID for unowned deals. Read by the board.
pub mod stage_totals {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipeline_stage_totals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub stage_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub owner_key: Uuid,
        pub pipeline_id: Uuid,
        pub n: i64,
        pub value_cents: i64,
        pub mrr_cents: i64,
        pub tcv_cents: i64,
        pub weighted_x100: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
