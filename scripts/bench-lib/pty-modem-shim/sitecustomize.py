# Put on PYTHONPATH for third-party flashers run against a pty (scripts/interop-thirdparty.sh,
# scripts/bench-lib/thirdparty-e2e.ts). Not the tools' code: (1) pyserial's RTS/DTR ioctls become
# no-ops when the kernel answers ENOTTY (a pty has no modem lines; the tools toggle them for a reset
# and crash otherwise), as pyserial's own open() already tolerates; (2) INTEROP_TRACE=<file> logs
# every serial write/read with a timestamp.
import errno, os, time
import serial.serialposix as sp

def _no_modem_lines(fn):
    def inner(self):
        try:
            fn(self)
        except OSError as e:
            if e.errno != errno.ENOTTY:
                raise
    return inner

sp.Serial._update_rts_state = _no_modem_lines(sp.Serial._update_rts_state)
sp.Serial._update_dtr_state = _no_modem_lines(sp.Serial._update_dtr_state)

_trace = os.environ.get('INTEROP_TRACE')
if _trace:
    _f = open(_trace, 'a', buffering=1)
    _t0 = time.monotonic()
    _write, _read = sp.Serial.write, sp.Serial.read

    def _hex(b, n=48):
        b = bytes(b)
        return b[:n].hex(' ') + (f' ... (+{len(b) - n} B)' if len(b) > n else '')

    def write(self, data):
        _f.write(f'{(time.monotonic() - _t0) * 1000:10.2f} TX {len(data):5d} @{self.baudrate}: {_hex(data)}\n')
        return _write(self, data)

    def read(self, size=1):
        d = _read(self, size)
        if d:
            _f.write(f'{(time.monotonic() - _t0) * 1000:10.2f} RX {len(d):5d}: {_hex(d)}\n')
        return d

    sp.Serial.write, sp.Serial.read = write, read
