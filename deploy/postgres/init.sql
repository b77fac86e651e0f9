-- Run once by the postgres image on an empty data directory (seed plan, section 4.2 step 3).
-- The runtime creates its own tables (migrations at start); these are extensions for operators.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS "pg_stat_statements";
