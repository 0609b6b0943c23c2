-- The SQL the API issues for this scenario, as captured from PostgreSQL's statement log (sqlx
-- prepared statements; run with pgbench -M prepared). Variables: -D tenant=… owner=… prefix=… upper=…
-- nids=… nphones=… lim=51 one=1 status=qualified (LIMIT and the IN list are bound parameters in
-- the app too, which matters for generic plans); bench_ids / bench_phones are filled by bench/run.sh.
-- GET /api/leads?q=<phone digits>: the digits token as a prefix range [digits, upper bound) like
-- the app computes it. The pair comes from bench_phones by \gset first (one extra tiny PK lookup
-- and round trip the API does not make); a subquery in the range would change the plan.
\set n random(1, :nphones)
SELECT term AS phone, upper_term AS phone_upper FROM bench_phones WHERE n = :n \gset
SELECT "lead_field_defs"."tenant_id", "lead_field_defs"."id", "lead_field_defs"."key", "lead_field_defs"."label", "lead_field_defs"."field_type", "lead_field_defs"."required", "lead_field_defs"."options", "lead_field_defs"."position", "lead_field_defs"."created_at", "lead_field_defs"."updated_at", "lead_field_defs"."version" FROM "lead_field_defs" WHERE "lead_field_defs"."tenant_id" = :tenant ORDER BY "lead_field_defs"."position" ASC, "lead_field_defs"."id" ASC;
SELECT "leads"."tenant_id", "leads"."id", "leads"."name", "leads"."name_sort", "leads"."email", "leads"."phone", "leads"."company", "leads"."cnpj", "leads"."position", "leads"."source", "leads"."status", "leads"."owner_id", "leads"."tags", "leads"."custom_fields", "leads"."cep", "leads"."city", "leads"."state", "leads"."notes", "leads"."score", "leads"."signal_points", "leads"."last_contacted_at", "leads"."merged_into", "leads"."created_at", "leads"."updated_at", "leads"."deleted_at", "leads"."version" FROM "leads" WHERE "leads"."tenant_id" = :tenant AND "leads"."deleted_at" IS NULL AND "leads"."id" IN (SELECT "lead_id" FROM "lead_terms" WHERE "tenant_id" = :tenant AND "term" >= :phone AND "term" < :phone_upper) ORDER BY "leads"."created_at" DESC, "leads"."id" DESC LIMIT :lim;
