# SPDX-License-Identifier: GPL-2.0-only
"""Capture error paths and degraded modes, on a fake /proc: a process that
does not exist or exits part-way, unreadable files, hidden PFNs, mappings that
change between reads."""

import subprocess
import sys

import psutil
import pytest
from capture_fakes import FakeReader
from crafted_process import A, B, D, crafted

from engine.capture.build import build
from engine.capture.live import capture_process
from engine.capture.model import CaptureError, ProcessGone
from engine.capture.thpmaps import compare
from tui.cli import main


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    if psutil.pid_exists(p.pid):
        pytest.skip("the PID was reused at once")
    return p.pid


def test_nonexistent_pid_is_one_clear_error():
    pid = _dead_pid()
    with pytest.raises(ProcessGone, match=f"^no process with PID {pid}$"):
        capture_process(pid)


def test_nonexistent_pid_on_the_command_line(capsys):
    pid = _dead_pid()
    assert main(["capture", str(pid)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"ptlab: capture: no process with PID {pid}\n"
    assert main(["capture", str(pid), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out.strip() == f'{{"error": "capture: no process with PID {pid}", "exit_status": 2}}'


@pytest.mark.parametrize("bad", [0, -1])
def test_not_a_pid(bad):
    with pytest.raises(CaptureError, match="is not a process ID"):
        capture_process(bad)


def test_bad_arguments_are_user_errors(capsys):
    assert main(["capture", "abc"]) == 2
    assert "invalid int value" in capsys.readouterr().err
    assert main(["capture", "1", "--granule", "8K"]) == 2
    assert "unknown granule" in capsys.readouterr().err
    assert main(["capture", "1", "--kernel", "v1.0"]) == 2
    assert "unknown kernel profile" in capsys.readouterr().err


def test_process_exiting_mid_capture_gives_no_result():
    reader = FakeReader(crafted(), die_after=1)  # the anon VMA is read, then the process is gone
    with pytest.raises(ProcessGone, match=r"^process 4242 \(fake\) exited during the capture "
                                          r"\(after 1 of 4 VMAs\)$"):
        capture_process(4242, reader=reader)


def test_process_exiting_mid_capture_partial_result_is_consistent():
    cap = capture_process(4242, reader=FakeReader(crafted(), die_after=1), partial=True)
    assert [v.start for v in cap.vmas] == [A]
    assert cap.warnings == ["process 4242 (fake) exited during the capture: kept the 1 of 4 VMAs "
                            "read before it went"]
    assert len(cap.vfns) == cap.vmas[0].count == 592
    cap.check()
    assert compare(build(cap)).eligible == 3


def test_process_gone_before_anything_was_read():
    reader = FakeReader(crafted())
    reader.alive = False
    with pytest.raises(ProcessGone, match="^no process with PID 4242$"):
        capture_process(4242, reader=reader)


def test_pid_reused_during_capture():
    class Reused(FakeReader):
        calls = 0

        def identity(self, pid):
            self.calls += 1
            comm, started = super().identity(pid)
            return comm, started + (self.calls > 1)

    with pytest.raises(ProcessGone, match="PID was reused"):
        capture_process(4242, reader=Reused(crafted()))


def test_unreadable_pagemap_is_a_clear_error():
    with pytest.raises(CaptureError, match=r"^cannot read /proc/4242/pagemap: permission denied"):
        capture_process(4242, reader=FakeReader(crafted(), deny=("pagemap",)))


def test_unreadable_smaps_falls_back_to_maps():
    cap = capture_process(4242, reader=FakeReader(crafted(), deny=("/smaps",)))
    assert cap.warnings[0] == "/proc/4242/smaps is unreadable: no THP counters (AnonHugePages ...)"
    assert [v.start for v in cap.vmas] == [A, B, 0x30000000, D]
    assert cap.vmas[0].smaps == {}
    assert len(cap.vfns) == 606  # every present or swapped page still read


def test_unreadable_maps_is_a_clear_error():
    with pytest.raises(CaptureError, match=r"^cannot read /proc/4242/maps: permission denied"):
        capture_process(4242, reader=FakeReader(crafted(), deny=("/smaps", "/maps")))


def test_zombie_or_kernel_thread_has_no_address_space():
    p = crafted()
    p.vmas = []
    with pytest.raises(CaptureError, match="has no user address space"):
        capture_process(4242, reader=FakeReader(p))


def test_unreadable_kpageflags_keeps_pfns_and_infers_folios():
    cap = capture_process(4242, reader=FakeReader(crafted(), deny=("kpageflags",)))
    assert len(cap.warnings) == 2
    assert cap.warnings[0].startswith("/proc/kpageflags is unreadable (Permission denied)")
    assert cap.warnings[1].startswith("page flags hidden: synthetic folios (")
    assert cap.pfns_visible and not cap.flags_visible and not cap.synthetic
    # 64K windows that are fully present, anonymous, physically contiguous and aligned,
    # plus the PMD range smaps reports
    assert cap.folios == {0x1000: 16, 0x1020: 16, 0x1040: 16, 0x40000: 512}


def test_hidden_pfns_give_synthetic_folios_and_one_warning():
    cap = capture_process(4242, reader=FakeReader(crafted(), hide_pfns=True))
    assert len(cap.warnings) == 1
    w = cap.warnings[0]
    assert w.startswith("PFNs are hidden (reading them needs CAP_SYS_ADMIN): using the VMA layout "
                        "with synthetic folios (") and "\n" not in w
    assert cap.synthesis == ("PMD THPs from smaps AnonHugePages/FilePmdMapped, anon mTHP of 64K where "
                             "sysfs enables it on fully present aligned ranges, the rest order-0; "
                             "order-0 pages get non-adjacent PFNs")
    assert cap.synthetic and not cap.pfns_visible
    # synthetic folios: the PMD THP and every fully present 64K-aligned anon window
    base = 0x100000
    assert sorted(cap.folios.values()) == [16, 16, 16, 512]
    assert min(cap.folios) == base
    first = [cap.pfns[i] for i in range(16)]
    assert first == list(range(base, base + 16))
    # order-0 pages are never physically adjacent
    order0 = [cap.pfns[i] for i in range(16, 32)]
    assert all(b - a == 2 for a, b in zip(order0, order0[1:], strict=False))
    # deterministic
    again = capture_process(4242, reader=FakeReader(crafted(), hide_pfns=True))
    assert again.pfns == cap.pfns and again.folios == cap.folios
    r = compare(build(cap))
    assert (r.eligible, r.folded_eligible) == (3, 2)


def test_hidden_pfns_with_pagemap_scan_know_the_zero_page_and_pmd():
    cap = capture_process(4242, reader=FakeReader(crafted(), hide_pfns=True, scan=True))
    assert "PMD THPs from PAGEMAP_SCAN" in cap.synthesis
    zero = {cap.pfns[i] for i in cap.pages(cap.vmas[3]) if cap.present(i)}
    assert zero == {0x100000 - 1}


def test_assume_mthp_sizes_override_sysfs():
    cap = capture_process(4242, reader=FakeReader(crafted(), hide_pfns=True), mthp_sizes=[16 << 10])
    assert "anon mTHP of 16K (as asked)" in cap.synthesis
    assert sorted(set(cap.folios.values())) == [4, 512]


def test_changed_mappings_are_retried():
    reader = FakeReader(crafted(), maps_changes=1)
    cap = capture_process(4242, reader=reader)
    assert reader.maps_reads == 2
    assert cap.warnings == ["mappings changed while capturing; attempt 2 was consistent"]
    assert len(cap.vmas) == 4


def test_mappings_that_keep_changing_are_dropped_consistently():
    cap = capture_process(4242, reader=FakeReader(crafted(), maps_changes=99), retries=2)
    assert cap.warnings == ["mappings kept changing over 3 attempts: dropped 1 VMAs and 0 pages that "
                            "changed during the last one"]
    assert [v.start for v in cap.vmas] == [B, 0x30000000, D]
    cap.check()


def test_pages_that_keep_changing_are_dropped():
    class Flipping(FakeReader):
        reads = 0

        def pagemap_hook(self, vfn, value):
            if vfn == (A >> 12) + 3:
                self.reads += 1
                return value ^ (self.reads & 1)  # the PFN differs on every read
            return value

    cap = capture_process(4242, reader=Flipping(crafted()), retries=1)
    assert cap.warnings == ["mappings kept changing over 2 attempts: dropped 0 VMAs and 1 pages that "
                            "changed during the last one"]
    assert (A >> 12) + 3 not in set(cap.vfns)
    assert len(cap.vfns) == 605


def test_capture_round_trips_through_plain_data():
    import msgpack

    from engine.capture.model import Capture

    cap = capture_process(4242, reader=FakeReader(crafted()))
    back = Capture.from_plain(msgpack.unpackb(msgpack.packb(cap.to_plain()), strict_map_key=False))
    assert back == cap
