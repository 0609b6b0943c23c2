//! SeaORM entities of tasks and their reschedule history.

pub mod task {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub title: String,
        pub description: Option<String>,
        pub task_type: String,
        pub priority: String,
        pub priority_rank: i32,
        pub due_at: Option<DateTimeUtc>,
        pub due_sort: DateTimeUtc,
        pub remind_at: Option<DateTimeUtc>,
        pub assignee_id: Uuid,
        pub lead_id: Option<Uuid>,
        pub opportunity_id: Option<Uuid>,
        pub status: String,
        pub completed_at: Option<DateTimeUtc>,
        pub completed_by: Option<Uuid>,
        pub outcome: Option<String>,
        pub reschedule_count: i32,
        pub overdue_emitted_at: Option<DateTimeUtc>,
        pub reminded_at: Option<DateTimeUtc>,
        pub created_by: Option<Uuid>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod reschedule {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "task_reschedules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub task_id: Uuid,
        pub from_due_at: Option<DateTimeUtc>,
        pub to_due_at: DateTimeUtc,
        pub reason: Option<String>,
        pub by_user: Option<Uuid>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
