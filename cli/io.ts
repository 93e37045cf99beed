/**
 * The streams the CLI writes to. `plugrig` as a process uses the process's own; `runCli` in a test swaps
 * in buffers, so the bad-input corpus runs every case in one process (fast) and still sees exactly what
 * a user would: stdout for output and --json, stderr for the one clear message.
 */
export interface CliStream {
  write(chunk: string): unknown;
  /** A terminal gets the progress bar; a buffer or pipe does not. */
  readonly isTTY?: boolean;
}

export interface CliStreams {
  stdout: CliStream;
  stderr: CliStream;
}

let current: CliStreams | undefined;

export function cliStdout(): CliStream {
  return current?.stdout ?? process.stdout;
}

export function cliStderr(): CliStream {
  return current?.stderr ?? process.stderr;
}

/** Route the CLI's output to `streams` until the returned function is called. One CLI run at a time. */
export function useCliStreams(streams: CliStreams): () => void {
  const before = current;
  current = streams;
  return () => {
    current = before;
  };
}
