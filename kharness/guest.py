"""The SSH session into the guest (paramiko): connect with a pinned host key, run, write small files.

The guest's host key was generated when the image was built and is the only
one accepted (RejectPolicy); a guest presenting another key is refused.
"""
from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .errors import InfraError
from .model import Outcome, Trouble

if TYPE_CHECKING:
    import paramiko

# paramiko's transport thread logs every failed attempt with a traceback (through
# logging's last-resort handler, to the user's terminal); connect() retries and
# reports what went wrong in one line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

# paramiko (and the cryptography it loads) is imported on first use, not with this module:
# a run imports it while its first guest boots (warm_up), when the harness only waits.
_warm: threading.Thread | None = None
_warm_lock = threading.Lock()
_paramiko_tried = threading.Event()      # the warm-up thread's import of paramiko is over


def _paramiko():
    if _warm is not None:
        _paramiko_tried.wait()
    import paramiko
    return paramiko


def warm_up(also: Callable[[], None] | None = None) -> None:
    """Import paramiko in a background thread, then run `also` there; once per process (call
    it when QEMU has started: the guest's boot leaves the host idle). Whatever fails there is
    left for the caller's own first use to raise, in its thread."""
    global _warm
    with _warm_lock:
        if _warm is None:
            _warm = threading.Thread(target=_warm_thread, args=(also,), name="warm-up", daemon=True)
            _warm.start()


def _warm_thread(also: Callable[[], None] | None) -> None:
    try:
        import paramiko  # noqa: F401
    except BaseException:
        pass
    finally:
        _paramiko_tried.set()
    if also:
        try:
            also()
        except BaseException:
            pass


def _save(f, data: bytes, errors: list[str]):
    """Write data to f; on an error (ENOSPC) note it, close f and return None."""
    if f is None:
        return None
    try:
        f.write(data)
        return f
    except OSError as e:
        errors.append(f"{f.name}: {e.strerror}")
        try:
            f.close()
        except OSError:
            pass
        return None


def _pinned_key(host_key_pub: str) -> "paramiko.PKey":
    kind, b64 = host_key_pub.split()[:2]
    return _paramiko().PKey.from_type_string(kind, base64.b64decode(b64))


class Guest:
    def __init__(self, port: int, host_key_pub: str, client_key: Path):
        self.port = port
        self.host_key = _pinned_key(host_key_pub)
        self.client_key = _paramiko().Ed25519Key.from_private_key_file(str(client_key))
        self.client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None    # one SFTP session per connection, opened on first use

    def connect(self, deadline: float, alive: Callable[[], bool] = lambda: True) -> None:
        """Retry until sshd answers or the deadline (monotonic) passes."""
        paramiko = _paramiko()
        seen: list[str] = []     # distinct failures, first ones first: the later ones are often consequences
        start = time.monotonic()
        while time.monotonic() < deadline and alive():
            client = paramiko.SSHClient()
            client.get_host_keys().add(f"[127.0.0.1]:{self.port}", self.host_key.get_name(), self.host_key)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect("127.0.0.1", port=self.port, username="root", pkey=self.client_key,
                               timeout=5, banner_timeout=10, auth_timeout=10,
                               allow_agent=False, look_for_keys=False)
                transport = client.get_transport()
                assert transport is not None
                transport.set_keepalive(5)
                self.client = client
                return
            except paramiko.BadHostKeyException as e:
                client.close()
                raise InfraError(f"guest presented a host key that is not the image's pinned key ({e}); refusing")
            except (OSError, paramiko.SSHException, EOFError) as e:
                why = str(e) or type(e).__name__
                if why not in seen and len(seen) < 3:
                    seen.append(why)
                client.close()
                time.sleep(0.2)
        why = "; ".join(seen) or "no attempt"
        if not alive():
            raise InfraError(f"QEMU exited while waiting for sshd in the guest on 127.0.0.1:{self.port} ({why})")
        raise InfraError(f"sshd in the guest did not answer on 127.0.0.1:{self.port} within "
                         f"{time.monotonic() - start:.0f} s ({why}); is the guest's network up? see console.log")

    def alive(self) -> bool:
        t = self.client.get_transport() if self.client else None
        return bool(t and t.is_active())

    def run(self, command: str, timeout: float, stdout_path: Path | None = None, stderr_path: Path | None = None,
            check_abort: Callable[[], Trouble | None] = lambda: None) -> Outcome:
        """Run `command` (a shell line for the guest's /bin/sh); stream output to files.

        check_abort is polled about ten times a second; a non-None answer stops the wait
        (the command is left running in the guest: the caller decides what to do).
        """
        if not self.client:
            raise InfraError("not connected to the guest")
        paramiko = _paramiko()
        start = time.monotonic()
        # Unbuffered: the lifecycle reads the job's stderr (its progress heartbeat) while it runs.
        out_f = open(stdout_path, "wb", buffering=0) if stdout_path else None
        err_f = open(stderr_path, "wb", buffering=0) if stderr_path else None
        out_tail, err_tail = bytearray(), bytearray()
        saving: list[str] = []      # why writing an output file failed
        try:
            try:
                chan = self.client.get_transport().open_session(timeout=10)
                chan.exec_command(command)
            except (paramiko.SSHException, OSError, AttributeError) as e:
                return Outcome(None, time.monotonic() - start, lost=f"cannot start command over ssh: {e}")
            chan.settimeout(0.1)
            while True:
                got = False
                while chan.recv_ready():
                    data = chan.recv(65536)
                    got = True
                    out_f = _save(out_f, data, saving)
                    out_tail = (out_tail + data)[-4096:]
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(65536)
                    got = True
                    err_f = _save(err_f, data, saving)
                    err_tail = (err_tail + data)[-4096:]
                if saving:      # the host could not keep the job's output (results disk full)
                    chan.close()
                    return Outcome(None, time.monotonic() - start,
                                   aborted=Trouble("error", f"cannot save the job's output on the host ({saving[0]})"),
                                   stdout=out_tail.decode(errors="replace"), stderr=err_tail.decode(errors="replace"))
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    status = chan.recv_exit_status()
                    if status == -1:   # paramiko: the channel closed without an exit status
                        return Outcome(None, time.monotonic() - start, lost="ssh channel closed without an exit status",
                                       stdout=out_tail.decode(errors="replace"), stderr=err_tail.decode(errors="replace"))
                    return Outcome(status, time.monotonic() - start,
                                   stdout=out_tail.decode(errors="replace"), stderr=err_tail.decode(errors="replace"))
                elapsed = time.monotonic() - start
                if why := check_abort():
                    chan.close()
                    return Outcome(None, elapsed, aborted=why, stdout=out_tail.decode(errors="replace"),
                                   stderr=err_tail.decode(errors="replace"))
                if elapsed > timeout:
                    chan.close()
                    return Outcome(None, elapsed, timed_out=True, stdout=out_tail.decode(errors="replace"),
                                   stderr=err_tail.decode(errors="replace"))
                if not self.alive():
                    return Outcome(None, elapsed, lost="ssh connection to the guest was lost",
                                   stdout=out_tail.decode(errors="replace"), stderr=err_tail.decode(errors="replace"))
                if not got:
                    try:
                        chan.recv_ready() or chan.status_event.wait(0.1)
                    except socket.timeout:
                        pass
        finally:
            for f in (out_f, err_f):
                if f:
                    try:
                        f.close()
                    except OSError:     # its last flush failed: already reported above
                        pass

    def ping(self, timeout: float = 15) -> bool:
        """Does the guest still run commands? (A dead guest behind QEMU's user net keeps
        the TCP connection up, so the transport alone cannot tell.)"""
        paramiko = _paramiko()
        try:
            chan = self.client.get_transport().open_session(timeout=timeout)
            chan.exec_command("true")
            return chan.status_event.wait(timeout) and chan.recv_exit_status() == 0
        except (paramiko.SSHException, OSError, AttributeError, EOFError):
            return False

    def sftp(self) -> "paramiko.SFTPClient":
        """The connection's SFTP session: each new one starts an sftp-server in the guest
        (a fork and exec, tens of milliseconds under TCG), so puts and gets share one."""
        assert self.client
        if self._sftp is None or self._sftp.get_channel().closed:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def put_text(self, text: str, remote: str, mode: int = 0o755) -> None:
        """Write a small file in the guest. InfraError when the copy fails: an SFTP error
        (OSError), or the connection or its channel gone (EOFError, paramiko.SSHException)."""
        try:
            sftp = self.sftp()
            with sftp.open(remote, "w") as f:
                f.write(text)
            sftp.chmod(remote, mode)
        except (OSError, EOFError, _paramiko().SSHException) as e:
            raise InfraError(f"cannot write {remote} in the guest: {str(e) or type(e).__name__}") from None

    def close(self) -> None:
        if self._sftp:
            try:
                self._sftp.close()
            except Exception:       # the connection may be gone already: closing the client is what matters
                pass
            self._sftp = None
        if self.client:
            self.client.close()
            self.client = None
