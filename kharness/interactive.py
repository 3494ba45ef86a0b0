"""An interactive shell in the guest over the paramiko session (for `harness.py shell`)."""
from __future__ import annotations

import os
import select
import shutil
import sys
import termios
import tty

from .guest import Guest


def shell(guest: Guest) -> None:
    assert guest.client
    cols, rows = shutil.get_terminal_size()
    chan = guest.client.invoke_shell(term=os.environ.get("TERM", "vt100"), width=cols, height=rows)
    if not sys.stdin.isatty():
        # Non-interactive use (scripts, tests): feed stdin, print output until the shell exits.
        chan.sendall(sys.stdin.buffer.read() + b"\nexit\n")
        while not chan.exit_status_ready() or chan.recv_ready():
            if chan.recv_ready():
                sys.stdout.buffer.write(chan.recv(65536))
                sys.stdout.flush()
            else:
                chan.status_event.wait(0.1)
        return
    old = termios.tcgetattr(sys.stdin)
    try:
        tty.setraw(sys.stdin.fileno())
        while True:
            r, _, _ = select.select([chan, sys.stdin], [], [])
            if chan in r:
                data = chan.recv(65536)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if sys.stdin in r:
                data = os.read(sys.stdin.fileno(), 1024)
                if not data:
                    break
                chan.sendall(data)
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, old)
