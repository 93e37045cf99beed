// Loaded into every test file's process (package.json "tap"."node-arg", after tap's own imports).
// tap instruments each test process with @tapjs/processinfo (module load hooks, source maps, a JSON file
// per process) for coverage and `tap --changed`, and passes that on to every node process a test starts
// (a spawn hook that adds it to NODE_OPTIONS). Coverage is off here and --changed is not used, and in a
// child it doubles the start-up CPU (`plugrig --version`: 0.72 s instead of 0.36 s), which the CLI tests
// pay on every spawned `plugrig`. So children start as a user's process would: without it. The test
// file's own process keeps it (tap's runner needs it). If tap changes these internals, nothing breaks:
// children just start slower again.
const spawnHooks = globalThis[Symbol.for('process-on-spawn@*:singletonId')];
if (spawnHooks && Array.isArray(spawnHooks.listeners)) spawnHooks.listeners = [];
if (process.env.NODE_OPTIONS) {
  process.env.NODE_OPTIONS = process.env.NODE_OPTIONS.replace(/\s*"?--(?:import|loader|require)[= ]"?[^"\s]*@tapjs[/\\]processinfo[^"\s]*"?/g, '').trim();
  if (!process.env.NODE_OPTIONS) delete process.env.NODE_OPTIONS;
}
