# SPDX-License-Identifier: GPL-2.0-only
"""The guest's shell script: tracing set up once, then every target in turn.

It runs under busybox ``sh`` after :mod:`crosscheck.guest`'s prologue has
mounted proc, sysfs, tracefs and debugfs and loaded the modules. What it
sets up, and why:

* kprobe and kretprobe events on every out-of-line ``contpte_*`` function
  the kernel lists in ``available_filter_functions`` (which ones are out of
  line is the build's business; the return probes give the nesting, so only
  the outermost calls are compared -- the compiler may inline one contpte.c
  function into another at some call sites), each entry recording x1 (the address, for the functions
  that take one) and x3 (``contpte_convert``'s new pte); on
  ``handle_mm_fault`` (address, flags) for page faults; on
  ``vm_normal_page`` (address, pte, and vma->vm_mm) for the page-table
  dumps, enabled by the program only while it reads smaps. x0 and the word
  at x0+16 are recorded too: the mm of the functions that take an mm, and
  vma->vm_mm (struct vm_area_struct: vm_start, vm_end, vm_mm) of those that
  take a vma -- fork fills the child's page tables from the parent's task,
  so the process is the mm's, not the task's;
* the guest's background activity off: khugepaged asleep, no proactive
  compaction, no NUMA balancing, no DAMON, no periodic or background
  writeback (dirty thresholds 80%/90%), so every page-table change comes
  from the program;
* a zram swap device, so MADV_PAGEOUT swaps (SWP_SYNCHRONOUS_IO, like the
  kernel's fast swap-in path), made afresh before every target;
* XFS at /mnt/ptlab for file mappings when the guest has a disk (/dev/vda,
  the cached image, see guest.boot_guest's *disk*) and the xfs module loaded:
  a filesystem with large folios from readahead, like the engine's file
  model; otherwise a tmpfs (shmem: order-0 folios, so file-backed targets
  cannot agree; runner refuses them). ``/out/fs.txt`` is /proc/mounts' line
  for /mnt/ptlab, so the host knows which one it was.

Per target: the trace buffer is cleared, the program runs, and the trace,
the ring buffer's stats (lost events are an error) and the program's output
go to ``/out``. Then the target's files are removed and the page cache
dropped (``sync; echo 3 > drop_caches``), so each target starts with an
empty page cache, the first one too.
"""

from __future__ import annotations

BUFFER_KB = 196608  # the trace buffer, per CPU (the guest runs on one)


def guest_script(n_targets: int, swap_mb: int = 1024, extra_probes: tuple[str, ...] = (),
                 extra_events: tuple[str, ...] = (), stack_probes: tuple[str, ...] = ()) -> str:
    """``extra_probes``: more kernel functions to mark in the trace (events
    ``ptlab/x*``); ``extra_events``: trace events to enable (``group`` or
    ``group:event``); ``stack_probes``: contpte or extra-probe functions whose every hit also
    records the kernel stack (a ``stacktrace`` trigger: who called it). All are ignored by the
    comparison; for reading a trace by hand."""
    events = "".join(f"echo 1 > $T/events/{e.replace(':', '/')}/enable || true\n" for e in extra_events)
    extra = "".join(f"echo 'p:ptlab/x{i} {f}' >> $T/kprobe_events || true\n"
                    + (f"echo stacktrace > $T/events/ptlab/x{i}/trigger || true\n" if f in stack_probes else "")
                    for i, f in enumerate(extra_probes))
    stacks = " ".join(("", *stack_probes, ""))
    return f"""
T=/sys/kernel/tracing
echo 0 > $T/tracing_on
echo nop > $T/current_tracer
echo > $T/kprobe_events
echo {BUFFER_KB} > $T/buffer_size_kb
echo 0 > $T/options/overwrite
grep -E '^_*contpte_[a-z0-9_.]*( |$)' $T/available_filter_functions | cut -d' ' -f1 | sort -u > /out/functions.txt
STACKS="{stacks}"
i=0
for f in $(cat /out/functions.txt); do
  echo "p:ptlab/c$i $f a0=%x0:x64 a1=%x1:x64 a3=%x3:x64 v16=+16(%x0):x64" >> $T/kprobe_events || echo "kprobe $f failed" >> /out/setup-errors.txt
  echo "r:ptlab/r$i $f" >> $T/kprobe_events || echo "kretprobe $f failed" >> /out/setup-errors.txt
  case "$STACKS" in *" $f "*) echo stacktrace > $T/events/ptlab/c$i/trigger || true;; esac
  i=$((i+1))
done
echo 'p:ptlab/fault handle_mm_fault addr=%x1:x64 flags=%x2:x32' >> $T/kprobe_events || echo "kprobe handle_mm_fault failed" >> /out/setup-errors.txt
echo 'p:ptlab/vmnp vm_normal_page addr=%x1:x64 pte=%x2:x64 mm=+16(%x0):x64' >> $T/kprobe_events || echo "kprobe vm_normal_page failed" >> /out/setup-errors.txt
{extra}echo 1 > $T/events/ptlab/enable
echo 0 > $T/events/ptlab/vmnp/enable
{events}KH=/sys/kernel/mm/transparent_hugepage/khugepaged
[ -w $KH/scan_sleep_millisecs ] && echo 86400000 > $KH/scan_sleep_millisecs
[ -w $KH/alloc_sleep_millisecs ] && echo 86400000 > $KH/alloc_sleep_millisecs
[ -w /proc/sys/vm/compaction_proactiveness ] && echo 0 > /proc/sys/vm/compaction_proactiveness
[ -w /proc/sys/kernel/numa_balancing ] && echo 0 > /proc/sys/kernel/numa_balancing
# no DAMON: DAMON_STAT (v6.17, on by default in Debian's 7.x builds) samples all of RAM every 5 ms
# and clears the access flag of one page per region (damon_pa_mkold() -> rmap walk ->
# damon_ptep_mkold() -> ptep_test_and_clear_young()), so a scenario's entries turned old between
# ops, more often the slower the guest ran. The command line says damon_stat.enabled=N (it then
# never starts); this catches DAMON modules of a user's kernel too. A kdamond left running (one
# started some other way) would age entries the same way: that is a setup error, not a divergence.
for m in damon_stat damon_reclaim damon_lru_sort; do
  [ -w /sys/module/$m/parameters/enabled ] && echo N > /sys/module/$m/parameters/enabled
done
grep -sx 'kdamond[.0-9]*' /proc/[0-9]*/comm > /out/kdamond.txt
[ -s /out/kdamond.txt ] && echo "a kdamond is running (DAMON ages access flags); stop it in your kernel's config or command line" >> /out/setup-errors.txt
# no address-space randomisation: with it the static program's brk heap starts anywhere in the
# 1 GiB above its bss (arch_randomize_brk()), where a scenario's `mmap ... at ADDR` may land,
# and MAP_FIXED_NOREPLACE then fails with EEXIST (random-1-126 on 6.12)
[ -w /proc/sys/kernel/randomize_va_space ] && echo 0 > /proc/sys/kernel/randomize_va_space
# no writeback while a target runs: the flusher's folio_mkclean() would write-protect and clean
# the PTEs of a shared file mapping mid-scenario (seen on 6.12 under TCG); the sync between
# targets writes everything back. Not dirty_writeback_centisecs=0: the first dirtied inode then
# wakes the flusher at once (wb_wakeup_delayed() with no delay), and a new disk's per-wb
# background threshold is 0 pages (no writeout history), so it writes back right away
V=/proc/sys/vm
[ -w $V/dirty_writeback_centisecs ] && echo 8640000 > $V/dirty_writeback_centisecs
[ -w $V/dirty_expire_centisecs ] && echo 8640000 > $V/dirty_expire_centisecs
[ -w $V/dirty_ratio ] && echo 90 > $V/dirty_ratio && echo 80 > $V/dirty_background_ratio
# a fresh swap device for every target, as the engine's scenario starts with one: the allocator's
# state (the per-CPU cluster "next" offsets, the slots cache) otherwise carries over from earlier
# targets, and where a target's slots land decides whether 16 order-0 slots happen to line up
# with a 64K-aligned address, which do_swap_page()'s alloc_swap_folio() then swaps in as one
# folio (random-1-232 on 6.12)
fresh_swap() {{
  [ -e /sys/block/zram0/disksize ] || return 0
  grep -qs '^/dev/zram0 ' /proc/swaps && swapoff /dev/zram0
  echo 1 > /sys/block/zram0/reset
  echo {swap_mb}M > /sys/block/zram0/disksize && mkswap /dev/zram0 > /dev/null && swapon /dev/zram0 || echo "zram swap failed" >> /out/setup-errors.txt
}}
fresh_swap
mkdir -p /mnt/ptlab
if [ -d /sys/module/virtio_blk ] && grep -qs 0x0002 /sys/bus/virtio/devices/*/device; then
  n=0; while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
fi
if [ -b /dev/vda ] && grep -qw xfs /proc/filesystems; then
  mount -t xfs /dev/vda /mnt/ptlab 2> /out/mount-error.txt || echo "mount -t xfs /dev/vda failed" >> /out/mount-error.txt
  [ -s /out/mount-error.txt ] || rm -f /out/mount-error.txt
fi
grep -qs ' /mnt/ptlab ' /proc/mounts || mount -t tmpfs -o size=2G tmpfs /mnt/ptlab
grep ' /mnt/ptlab ' /proc/mounts > /out/fs.txt
rm -rf /mnt/ptlab/*
sync; echo 3 > /proc/sys/vm/drop_caches
uname -r > /out/uname.txt
getconf PAGESIZE > /out/pagesize.txt 2>/dev/null || getconf PAGE_SIZE > /out/pagesize.txt 2>/dev/null
THP=/sys/kernel/mm/transparent_hugepage
t=0
while [ $t -lt {n_targets} ]; do
  # no large folios while the program starts: its own stack and data stay order-0
  # (the program then writes the engine's defaults and the scenario's settings)
  for f in $THP/hugepages-*/enabled; do echo never > $f; done
  echo never > $THP/enabled
  [ $t -gt 0 ] && fresh_swap
  echo > $T/trace
  echo 1 > $T/tracing_on
  grep -E '^(pgscan|pgrefill|pgsteal|kswapd|pageoutrun|allocstall)' /proc/vmstat > /out/vmstat0-$t.txt
  read up0 idle0 < /proc/uptime
  /ptlab/prog $t > /out/prog-$t.log 2>&1
  echo $? > /out/status-$t.txt
  read up1 idle1 < /proc/uptime
  echo "$up0 $up1" > /out/time-$t.txt
  grep -E '^(pgscan|pgrefill|pgsteal|kswapd|pageoutrun|allocstall)' /proc/vmstat > /out/vmstat1-$t.txt
  echo 0 > $T/tracing_on
  cat $T/trace > /out/trace-$t.txt
  cat $T/per_cpu/cpu0/stats > /out/stats-$t.txt
  rm -rf /mnt/ptlab/*
  sync; echo 3 > /proc/sys/vm/drop_caches
  t=$((t+1))
done
"""
