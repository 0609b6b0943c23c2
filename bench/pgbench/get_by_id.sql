-- The SQL the API issues for this scenario, as captured from PostgreSQL's statement log (sqlx
-- prepared statements; run with pgbench -M prepared). Variables: -D tenant=… owner=… prefix=… upper=…
-- nids=… nphones=… lim=51 one=1 status=qualified (LIMIT and the IN list are bound parameters in
-- the app too, which matters for generic plans); bench_ids / bench_phones are filled by bench/run.sh.
-- GET /api/leads/{id}: one primary-key lookup (the id comes from a table of real ids, which adds
-- one tiny PK lookup the API does not do).
\set n random(1, :nids)
SELECT "leads"."tenant_id", "leads"."id", "leads"."name", "leads"."name_sort", "leads"."email", "leads"."phone", "leads"."company", "leads"."cnpj", "leads"."position", "leads"."source", "leads"."status", "leads"."owner_id", "leads"."tags", "leads"."custom_fields", "leads"."cep", "leads"."city", "leads"."state", "leads"."notes", "leads"."score", "leads"."signal_points", "leads"."last_contacted_at", "leads"."merged_into", "leads"."created_at", "leads"."updated_at", "leads"."deleted_at", "leads"."version" FROM "leads" WHERE "leads"."tenant_id" = :tenant AND "leads"."id" = (SELECT id FROM bench_ids WHERE n = :n) LIMIT :one;
