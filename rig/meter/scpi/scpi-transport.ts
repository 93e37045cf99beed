/**
 * Message-level link to a SCPI instrument. Serial and TCP terminate messages with a newline; USBTMC
 * frames them itself (EOM). The SCPI client does not care which.
 */
export interface ScpiTransport {
  /** Human-readable address for errors, e.g. "tcp://127.0.0.1:5025". */
  readonly address: string;
  /** Send one program message (without terminator). */
  send(message: Uint8Array): Promise<void>;
  /** Receive one response message (without terminator), or throw InstrumentError after timeoutMs. */
  receive(timeoutMs: number): Promise<Uint8Array>;
  /** Drop any buffered input (after a timeout, before the next command). */
  discardInput(): void;
  close(): Promise<void>;
}
