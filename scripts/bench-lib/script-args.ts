import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * node:util parseArgs for a bench script: an unknown or malformed option is one line on stderr and
 * exit 2 (the scripts' documented bad-argument code), not a stack trace.
 */
export function parseScriptArgs<T extends ParseArgsConfig>(script: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    process.stderr.write(`${script}: ${e instanceof Error ? e.message : String(e)} (see the header of scripts/${script}.ts)\n`);
    process.exit(2);
  }
}
