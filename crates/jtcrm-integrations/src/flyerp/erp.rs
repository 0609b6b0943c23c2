//! The provider-neutral ERP trait and its vocabulary.

use std::future::Future;
use std::pin::Pin;

use chrono::NaiveDate;

/// A boxed, `Send` future, so [`ErpProvider`] stays usable as `dyn ErpProvider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an ERP call failed. [`ErpError::is_retryable`] tells a job runner whether to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErpError {
    /// The token was refused (HTTP 401/403).
    #[error("ERP refused the credentials")]
    Unauthorized,
    /// A business refusal (`Sucesso:false` with its `Mensagem`, or another 4xx). Do not retry
    /// unchanged.
    #[error("ERP rejected the request: {0}")]
    Rejected(String),
    /// Network failure, timeout, 408/429 or 5xx. Retry: creation is idempotent by reference.
    #[error("ERP unreachable or failing: {0}")]
    Transport(String),
    /// HTTP success but a body we cannot make sense of.
    #[error("unexpected response from the ERP: {0}")]
    InvalidResponse(String),
    /// The input was refused before any call (empty reference, no services, day 32, ...).
    #[error("invalid contract data: {0}")]
    InvalidInput(String),
}

impl ErpError {
    /// Whether the same call may succeed later unchanged (only [`ErpError::Transport`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ErpError::Transport(_))
    }
}

/// The contract's customer, created or updated in the ERP together with the contract.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    /// CNPJ or CPF, masked or not (the ERP keys customers on it).
    pub cnpj_cpf: String,
    /// Razão social (company) or full name (person).
    pub razao_social: String,
    pub nome_fantasia: Option<String>,
    /// Inscrição estadual (company) or RG (person).
    pub state_registration: Option<String>,
    pub street: Option<String>,
    pub number: Option<String>,
    pub complement: Option<String>,
    pub district: Option<String>,
    pub city: Option<String>,
    /// UF, two letters.
    pub state: Option<String>,
    pub cep: Option<String>,
    /// Up to two are sent (`telefone1`, `telefone2`).
    pub phones: Vec<String>,
    pub email: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub notes: Option<String>,
}

/// One billed (or not) line of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractService {
    /// The ERP's product/service reference.
    pub product_code: String,
    pub quantity: u32,
    /// Unit price in cents (sent as reais with two decimals).
    pub unit_price_cents: i64,
    /// Free text appended to the line (`complemento`).
    pub description: Option<String>,
    pub start_date: Option<NaiveDate>,
    /// A line that is listed but not invoiced (e.g. a loaned router).
    pub non_billable: bool,
}

/// A CRM contract to mirror in the ERP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractSync {
    /// The CRM contract number: the idempotency key (`referencia` in FlyERP).
    pub reference: String,
    pub customer: Customer,
    pub services: Vec<ContractService>,
    /// Contract description (`descricao`).
    pub description: Option<String>,
    pub first_due_date: NaiveDate,
    /// Day of the month invoices fall due, 1–31.
    pub due_day: u8,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    /// Billing recurrence, in months (`recorrencia`).
    pub recurrence_months: u16,
    /// The ERP's seller code.
    pub seller_code: Option<String>,
    /// Notes not printed on invoices (`observacao_nao_fiscal`).
    pub notes: Option<String>,
}

impl ContractSync {
    /// Checks what the ERP would otherwise refuse for structural reasons. The CNPJ/CPF check
    /// digits are left to the ERP (its `Sucesso:false` comes back as [`ErpError::Rejected`]).
    pub fn validate(&self) -> Result<(), ErpError> {
        let bad = |m: &str| Err(ErpError::InvalidInput(m.to_string()));
        let reference = self.reference.trim();
        if reference.is_empty() || reference.len() > 60 {
            return bad("reference must have 1 to 60 characters");
        }
        if self.customer.cnpj_cpf.trim().is_empty() {
            return bad("customer CNPJ/CPF is required");
        }
        if self.customer.razao_social.trim().is_empty() {
            return bad("customer razão social / name is required");
        }
        if self.services.is_empty() {
            return bad("a contract needs at least one service");
        }
        for s in &self.services {
            if s.product_code.trim().is_empty() {
                return bad("every service needs a product code");
            }
            if s.quantity == 0 {
                return bad("service quantity must be positive");
            }
            if s.unit_price_cents < 0 {
                return bad("service unit price cannot be negative");
            }
        }
        if !(1..=31).contains(&self.due_day) {
            return bad("due day must be between 1 and 31");
        }
        if self.recurrence_months == 0 {
            return bad("recurrence must be at least one month");
        }
        if let Some(end) = self.end_date
            && end < self.start_date
        {
            return bad("end date before start date");
        }
        Ok(())
    }
}

/// The ERP's id of a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpContractRef {
    pub id: String,
    /// `false` when the contract already existed (found by reference) and nothing was created.
    pub created: bool,
}

/// An ERP that receives the CRM's contracts. FlyERP is [`super::Client`].
pub trait ErpProvider: Send + Sync {
    /// Creates the contract (and its customer) unless one with the same reference already
    /// exists for that customer, in which case its id is returned (`created: false`). Safe to
    /// retry after any error: a retry never creates a second contract.
    fn upsert_contract<'a>(
        &'a self,
        contract: &'a ContractSync,
    ) -> BoxFuture<'a, Result<ErpContractRef, ErpError>>;

    /// The contract of customer `cnpj_cpf` whose reference is `reference`, if any.
    fn find_contract_by_reference<'a>(
        &'a self,
        cnpj_cpf: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ErpContractRef>, ErpError>>;

    /// One cheap authenticated read, to check the configured credentials.
    fn test_credentials(&self) -> BoxFuture<'_, Result<(), ErpError>>;
}
