import { createServer, type Server, type Socket } from 'node:net';

/** Anything that executes SCPI program messages. */
export interface ScpiMessageHandler {
  handleMessage(message: string): Uint8Array | undefined;
}

export interface ScpiTcpServer {
  readonly host: string;
  readonly port: number;
  /** tcp://host:port, as a jig file's meter address. */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serve a simulated instrument as a SCPI raw socket: LF-terminated messages in, LF-terminated
 * responses out. Port 0 picks a free port (reported back).
 */
export async function serveScpiTcp(instrument: ScpiMessageHandler, options: { host?: string; port?: number } = {}): Promise<ScpiTcpServer> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let rx = '';
    socket.on('data', (chunk: Buffer) => {
      rx += chunk.toString('latin1');
      for (let nl = rx.indexOf('\n'); nl >= 0; nl = rx.indexOf('\n')) {
        const message = rx.slice(0, nl).replace(/\r$/, '');
        rx = rx.slice(nl + 1);
        const reply = instrument.handleMessage(message);
        if (reply) socket.write(Buffer.concat([reply, Buffer.from('\n')]));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host,
    port,
    address: `tcp://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
