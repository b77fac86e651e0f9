/**
 * The file Piscina loads on each worker thread: CommonJS on purpose. Piscina `require()`s its
 * worker file before trying `import()`, and on Node 20.19+ `require()` of an ES module whose
 * graph has a top-level await (worker.js loads the functions that way) can abort the whole
 * process (`FATAL ERROR: v8::Module::IsGraphAsync ... must be used on an instantiated module`,
 * seen in the test suite) instead of throwing. This file is plain CommonJS, so `require()`
 * loads it without touching the ESM loader, and it imports the real worker itself.
 */
// a function's stack names its .ts file and line (the build writes source maps)
process.setSourceMapsEnabled(true);
const worker: Promise<{ default: (buf: Uint8Array) => Promise<Uint8Array> }> = import('./worker.js');

module.exports = async function runTask(buf: Uint8Array): Promise<Uint8Array> {
  return (await worker).default(buf);
};
