"""QEMU command line and port allocation (no QEMU started here)."""
import socket
from pathlib import Path

from kharness import vm


def spec(**kw):
    base = dict(kernel=Path("/k/bzImage"), rootfs=Path("/c/rootfs.img"), disks=(Path("/r/test.img"), Path("/r/scratch.img")),
                memory="2G", cpus=2, accel="tcg", cmdline="console=ttyS0", ssh_port=40022,
                console=Path("/r/boot-1.console"), qmp=Path("/r/qmp.sock"))
    base.update(kw)
    return vm.VmSpec(**base)


def opt_values(argv, opt):
    return [argv[i + 1] for i, a in enumerate(argv) if a == opt]


def test_tcg_command_line():
    argv = vm.qemu_argv(spec())
    assert argv[0] == "qemu-system-x86_64"
    assert opt_values(argv, "-accel") == ["tcg,thread=multi"]
    assert opt_values(argv, "-cpu") == ["max"]
    drives = opt_values(argv, "-drive")
    assert drives[0] == "file=/c/rootfs.img,if=virtio,format=raw,snapshot=on,index=0"   # cached image never written
    assert [d.split(",")[0] for d in drives[1:]] == ["file=/r/test.img", "file=/r/scratch.img"]
    assert "-no-reboot" in argv and "-nodefaults" in argv
    assert opt_values(argv, "-m") == ["2G"] and opt_values(argv, "-smp") == ["2,sockets=2"]


def test_network_is_restricted_and_forward_is_loopback_only():
    argv = vm.qemu_argv(spec())
    (netdev,) = opt_values(argv, "-netdev")
    assert "restrict=on" in netdev.split(",")
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev.split(",")
    (qmp,) = opt_values(argv, "-qmp")
    assert qmp.startswith("unix:/r/qmp.sock")


def test_kvm_hides_arch_capabilities():
    argv = vm.qemu_argv(spec(accel="kvm"))
    assert opt_values(argv, "-accel") == ["kvm"]
    assert opt_values(argv, "-cpu") == ["host,-arch-capabilities"]


def test_console_goes_to_this_boots_file():
    argv = vm.qemu_argv(spec())
    assert "file,id=con0,path=/r/boot-1.console" in opt_values(argv, "-chardev")
    assert opt_values(argv, "-serial") == ["chardev:con0"]


def test_kernel_cmdline_carries_hung_task_timeout():
    line = vm.kernel_cmdline(7, "foo=bar")
    assert "sysctl.kernel.hung_task_timeout_secs=7" in line.split()
    assert "init=/sbin/kharness-init" in line.split()
    assert line.endswith("foo=bar")


def test_kernel_cmdline_keeps_the_console_verbose_and_trusts_the_tsc():
    words = vm.kernel_cmdline(7).split()
    assert "tsc=reliable" in words                # no ACPI timers: the clocksource would be jiffies
    # The console analyzer needs every level at runtime: no quiet, no loglevel, no second console.
    assert not [w for w in words if w == "quiet" or w.startswith("loglevel=")]
    assert [w for w in words if w.startswith("console=")] == ["console=ttyS0,115200"]


def test_boots_the_pvh_vmlinux_beside_a_bzimage(tmp_path):
    bz = tmp_path / "bzImage"
    bz.write_bytes(b"bz")
    assert opt_values(vm.qemu_argv(spec(kernel=bz)), "-kernel") == [str(bz)]      # no vmlinux: the bzImage
    (tmp_path / "vmlinux").write_bytes(b"elf")
    assert opt_values(vm.qemu_argv(spec(kernel=bz)), "-kernel") == [str(tmp_path / "vmlinux")]
    other = tmp_path / "my-kernel"            # a kernel file given by name is booted as given
    other.write_bytes(b"bz")
    assert vm.boot_kernel(other) == other


def test_free_port_is_bindable_on_loopback():
    ports = {vm.free_port() for _ in range(5)}
    assert all(1024 < p < 65536 for p in ports)
    p = ports.pop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", p))


def test_console_stream_tracks_marks_and_lines(tmp_path):
    seen = []
    s = vm.ConsoleStream(tmp_path / "console.log", seen.append)
    s.new_boot("boot 1")
    s.write("[    0.000000] Linux version 6.12.117-kharness (kharness@kharness)\n[    1.0] KHARNESS-")
    assert "ready" not in s.marks
    s.write("READY\n[    2.0] kharness: job-start ext4.zero-range-basic\n")
    assert s.marks == {"banner": 2, "ready": 3, "start ext4.zero-range-basic": 4}
    s.new_boot("boot 2")           # a new boot forgets the old boot's marks
    assert s.marks == {}
    assert s.lines == 5
    s.close()
    assert (tmp_path / "console.log").read_text().count("\n") == 5
    assert "".join(seen).startswith("==== kharness: boot 1 ====")


def test_job_window_is_copied_from_its_offset(tmp_path):
    """A job's console.txt starts at the byte offset recorded when its window opened (mid-line
    too) and is the same as numbering console.log from line 1."""
    from types import SimpleNamespace

    from kharness.lifecycle import Watched, copy_windows
    from kharness.model import Outcome
    stream = vm.ConsoleStream(tmp_path / "console.log", lambda text: None)
    stream.write("[    0.000000] Linux version 6.12\n[    1.0] caf\u00e9 \u2014 boot line\n[    2.0] partial ")
    with stream.cond:
        start, offset = stream.lines, stream.next_line_offset()
    stream.write("line ends\n<5>kharness: job-start ext4.x\n[    3.0] INFO: task hung\n[    4.0] tail")
    assert (tmp_path / "console.log").read_bytes()[offset:].startswith(b"[    2.0] partial line ends\n")
    s = SimpleNamespace(stream=stream)
    window = (start + 1, stream.lines + 1)        # the last, unfinished line belongs to the window too
    copy_windows(s, Watched(Outcome(0, 1.0), [], window, offset), {tmp_path / "seek.txt": window})
    copy_windows(s, Watched(Outcome(0, 1.0), [], window, None), {tmp_path / "scan.txt": window})
    text = (tmp_path / "seek.txt").read_text()
    assert text == (tmp_path / "scan.txt").read_text()
    assert text.splitlines()[0] == "      3  [    2.0] partial line ends"
    assert text.splitlines()[-1] == "      6  [    4.0] tail"
    stream.close()


def test_tools_disk_is_attached_read_only_after_the_test_and_scratch_disks():
    drives = opt_values(vm.qemu_argv(spec(tools=Path("/c/tools/tools.img"))), "-drive")
    assert drives[3] == "file=/c/tools/tools.img,if=virtio,format=raw,readonly=on,index=3"     # /dev/vdd
    assert not any("tools.img" in d for d in opt_values(vm.qemu_argv(spec()), "-drive"))
