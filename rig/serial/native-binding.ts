import { readSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from '@serialport/bindings-interface' with { 'resolution-mode': 'require' }; // its exports map has no ESM types
import { PACKAGE_ROOT } from '../core/package-root.ts';

/** What bindings-cpp's Unix ports (LinuxPortBinding, DarwinPortBinding) carry besides the interface. */
interface UnixPort extends BindingPortInterface {
  fd: number | null;
  poller: { once(event: 'readable', cb: (err: Error | null) => void): unknown };
}

function isUnixPort(p: BindingPortInterface): p is UnixPort {
  const u = p as Partial<UnixPort>;
  return typeof u.fd === 'number' && typeof u.poller?.once === 'function';
}

function canceled(): Error {
  return Object.assign(new Error('Port is not open'), { canceled: true });
}

/** The kernel has nothing to give (or no room) right now: try again once it may have. */
function wouldBlock(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR';
}

/** bindings-cpp marks these as an unplug; the stream treats every non-canceled error as one anyway. */
function markDisconnect(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException & { disconnect?: boolean };
  if (err.code === 'EBADF' || err.code === 'ENXIO' || err.code === 'UNKNOWN' || err.errno === -1) err.disconnect = true;
  return err;
}

/**
 * A bindings-cpp Unix port whose reads and writes are plain non-blocking syscalls on the main
 * thread. bindings-cpp does them through libuv's thread pool (fs.read / fs.write): every received
 * chunk is a hand-off to a pool thread and back, measured at 10-13 thread switches per BK7231
 * command round trip on a pty against about two here; on a loaded machine each switch is a wait
 * for a CPU. The fd is non-blocking (bindings-cpp opens it O_NONBLOCK), so a syscall never stalls
 * the loop: with nothing to read it fails with EAGAIN and the read waits on the binding's own
 * poller (epoll on the loop thread), as pyserial waits in select().
 *
 * Only reads use the poller. Its native side restarts the poll with just the event last asked
 * for (Poller::poll passes `events`, not the accumulated set, to uv_poll_start), so a write
 * waiting for 'writable' would silence the pending read's 'readable' and two such ports would
 * wait on each other forever. A write the kernel has no room for (EAGAIN: its TX buffer is full)
 * is retried after the time ~256 bytes take on the wire instead. Opening, termios, modem lines,
 * flush, drain and close stay bindings-cpp's.
 */
class DirectIoPort implements BindingPortInterface {
  readonly #port: UnixPort;
  #baudRate: number;
  #writing: Promise<void> | null = null;

  constructor(port: UnixPort) {
    this.#port = port;
    this.#baudRate = port.openOptions.baudRate;
  }

  get openOptions(): Required<OpenOptions> {
    return this.#port.openOptions;
  }

  get isOpen(): boolean {
    return this.#port.isOpen;
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    for (;;) {
      const fd = this.#port.fd;
      if (!this.#port.isOpen || fd === null) throw canceled();
      try {
        const bytesRead = readSync(fd, buffer, offset, length, null);
        // 0 = nothing now on a tty whose other side is gone; the endpoint's vanish check ends that.
        if (bytesRead > 0) return { buffer, bytesRead };
      } catch (e) {
        if (!wouldBlock(e)) throw markDisconnect(e);
      }
      await new Promise<void>((resolve, reject) => {
        // A canceled error when the port is closed meanwhile (the poller is stopped then).
        this.#port.poller.once('readable', (err) => (err ? reject(err) : resolve()));
      });
    }
  }

  write(buffer: Buffer): Promise<void> {
    const op = this.#write(buffer).finally(() => {
      if (this.#writing === op) this.#writing = null;
    });
    this.#writing = op;
    return op;
  }

  async #write(buffer: Buffer): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const fd = this.#port.fd;
      if (!this.#port.isOpen || fd === null) throw canceled();
      try {
        done += writeSync(fd, buffer, done, buffer.length - done);
        continue;
      } catch (e) {
        if (!wouldBlock(e)) throw markDisconnect(e);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(20, Math.max(1, (256 * 10 * 1000) / this.#baudRate))));
    }
  }

  close(): Promise<void> {
    return this.#port.close();
  }
  async update(options: UpdateOptions): Promise<void> {
    await this.#port.update(options);
    this.#baudRate = options.baudRate;
  }
  set(options: SetOptions): Promise<void> {
    return this.#port.set(options);
  }
  get(): Promise<PortStatus> {
    return this.#port.get();
  }
  getBaudRate(): Promise<{ baudRate: number }> {
    return this.#port.getBaudRate();
  }
  flush(): Promise<void> {
    return this.#port.flush();
  }
  async drain(): Promise<void> {
    // bindings-cpp's drain waits for its own write operation, which never runs here: wait for ours.
    await this.#writing;
    await this.#port.drain();
  }
}

/**
 * A binding whose Unix ports do their I/O directly (DirectIoPort); ports of any other shape (the
 * Windows binding, a test double) are returned as the inner binding opened them.
 */
export function directIoBinding(inner: BindingInterface): BindingInterface {
  return {
    list: (): Promise<PortInfo[]> => inner.list(),
    open: async (options: OpenOptions): Promise<BindingPortInterface> => {
      const port = await inner.open(options);
      return isUnixPort(port) ? new DirectIoPort(port) : port;
    },
  };
}

/** bindings-cpp's module (under dist/, the package has no exports map) and export name for each OS, as its autoDetect() picks. */
const PLATFORM_BINDINGS: Readonly<Record<string, readonly [string, string]>> = {
  win32: ['win32.js', 'WindowsBinding'],
  darwin: ['darwin.js', 'DarwinBinding'],
};
const LINUX_BINDING = ['linux.js', 'LinuxBinding'] as const;

let platformBinding: BindingInterface | undefined;

/**
 * serialport's native binding for this OS, loaded on the first port: the package's index loads the
 * Linux, macOS and Windows bindings (and, imported as ESM, is lexed for its re-exports) to return one
 * of them; this loads that one alone. The index is the fallback should the package's layout change.
 */
function loadPlatformBinding(): BindingInterface {
  if (platformBinding) return platformBinding;
  const require = createRequire(join(PACKAGE_ROOT, 'package.json'));
  const [file, name] = PLATFORM_BINDINGS[process.platform] ?? LINUX_BINDING;
  let binding: BindingInterface | undefined;
  try {
    binding = (require(`@serialport/bindings-cpp/dist/${file}`) as Record<string, BindingInterface | undefined>)[name];
  } catch {
    binding = undefined;
  }
  platformBinding = binding ?? (require('@serialport/bindings-cpp') as { autoDetect(): BindingInterface }).autoDetect();
  return platformBinding;
}

/** The machine's serial binding (serialport's native one for this OS), with direct I/O on Unix. */
export function nativeSerialBinding(): BindingInterface {
  return directIoBinding(loadPlatformBinding());
}
