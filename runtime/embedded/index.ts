// placeholder until the embedded PostgreSQL module lands (branch wt-embedded)
import type { Logger } from '../observability/index.js';
export interface EmbeddedPostgres {
  connection: { host: string; port: number; username: string; database: string };
  url: string;
  dataDir: string;
  version: string;
  stop(): Promise<void>;
}
export function startEmbeddedPostgres(_o: {
  dataDir: string;
  explicit: boolean;
  database: string;
  log: Logger;
}): Promise<EmbeddedPostgres> {
  return Promise.reject(new Error('embedded PostgreSQL is not built yet'));
}
