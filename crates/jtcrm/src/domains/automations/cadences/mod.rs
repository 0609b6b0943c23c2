//! Cadences: an ordered list of steps (a delay, then a call/WhatsApp task for the owner, an email to
//! the lead or a generic task), enrolments per lead, and `automations.cadence_step`, the scheduled job
//! that runs one step inside business hours and schedules the next. Leads leave when converted, lost
//! or won (events), when they reply (`…/exit {"reason": "replied"}`) or by hand.

use chrono::{DateTime, Utc};
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::automations::{
    Cadence, CadenceChannel, CadenceInput, CadenceStep, EnrollResponse, Enrollment,
    EnrollmentStatus, ExitRequest, LeadIdsRequest, UnenrollResponse,
};
use jtcrm_types::dto::tasks::TaskInput;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, TryInsertResult,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;
use uuid::Uuid;

use super::actions::find_marked_event;
use super::actor_ctx;
use super::business_hours::{self, Hours};
use super::model::{cadence, enrollment};
use super::templates::{clip, render};
use crate::domains::{leads, pipelines, tasks};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events::{self, model as event};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers, Staff};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::jobs::{JobCtx, JobError, NewJob, enqueue};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;
use jtcrm_kernel::visibility;
use jtcrm_types::dto::leads::LeadStatus;

mod definitions;
mod enrolments;
mod step;

pub use definitions::*;
pub use enrolments::*;
pub use step::*;

pub const STEP_KIND: &str = "automations.cadence_step";
pub const MAX_STEPS: usize = 30;
pub const MAX_LEADS_PER_CALL: usize = 500;
