// Opt-in measurement for CI run time (package.json "tap"."node-arg" loads it into every test file's
// process): with PLUGRIG_TEST_CPU_LOG=<file>, each test process appends one JSON line when it exits —
// the test file, its whole lifetime in wall ms (module loading included, which tap's `# time=` leaves
// out) and the CPU ms of the process and of the children it waited for (/proc/self/stat utime, stime,
// cutime, cstime). CPU does not stretch with machine load the way wall time does.
import { appendFileSync, readFileSync } from 'node:fs';

const logFile = process.env.PLUGRIG_TEST_CPU_LOG;
if (logFile) {
  const started = Date.now() - process.uptime() * 1000;
  process.on('exit', () => {
    try {
      // Fields after the command name in parentheses: utime is field 14 of /proc/<pid>/stat.
      const stat = readFileSync('/proc/self/stat', 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const tick = 10; // ms per clock tick (USER_HZ 100 on Linux)
      const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]].map((x) => Number(x) * tick);
      const file = process.argv[1]?.replace(`${process.cwd()}/`, '');
      appendFileSync(logFile, `${JSON.stringify({ file, wallMs: Date.now() - started, cpuMs: utime + stime, childCpuMs: cutime + cstime })}\n`);
    } catch {
      // a measurement, never a reason for a test process to fail
    }
  });
}
