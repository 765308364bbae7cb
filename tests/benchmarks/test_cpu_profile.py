"""``sfu_load.py --profile``: perf samples sorted into the buckets the report prints (kernel send,
loopback delivery, receive, SRTP, interpreter, our native code ...), from perf's real output."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from benchmarks.cpu_profile import BUCKETS, PerfRecorder, breakdown, classify

# perf script -F comm,tid,ip,sym,dso output, cut from a recording of the SFU at 5 x 5
SCRIPT = """\
python  8690
\tffffffff81ba37b4 _copy_from_iter ([kernel.kallsyms])
\tffffffff8209cad7 udp_sendmsg ([kernel.kallsyms])
\tffffffff81e78368 __sys_sendmmsg ([kernel.kallsyms])
\tffffffff81000130 entry_SYSCALL_64_after_hwframe ([kernel.kallsyms])
\t          10b106 __sendmmsg (/usr/lib/x86_64-linux-gnu/libc.so.6)

python  8690
\tffffffff81eb08ac net_rx_action ([kernel.kallsyms])
\tffffffff81369c4d handle_softirqs ([kernel.kallsyms])
\tffffffff81eaca84 __dev_queue_xmit ([kernel.kallsyms])
\tffffffff8209cb00 udp_sendmsg ([kernel.kallsyms])
\tffffffff81e78368 __sys_sendmmsg ([kernel.kallsyms])
\t          10b106 __sendmmsg (/usr/lib/x86_64-linux-gnu/libc.so.6)

python  8690
\tffffffff813aecd3 finish_task_switch.isra.0 ([kernel.kallsyms])
\tffffffff8175837e do_epoll_wait ([kernel.kallsyms])
\t          108cae epoll_pwait (/usr/lib/x86_64-linux-gnu/libc.so.6)

python  8690
\tffffffff81e7a111 udp_recvmsg ([kernel.kallsyms])
\tffffffff81e7b222 __sys_recvmmsg ([kernel.kallsyms])

python  8690
\t          1989c0 _Py_dict_lookup (/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0)

python  8690
\t           2a1c0 srtp_stream_list_get (/work/main/.venv/lib/python3.11/site-packages/pylibsrtp/_binding.abi3.so)
\t           2a9f0 srtp_protect_mki (/work/main/.venv/lib/python3.11/site-packages/pylibsrtp/_binding.abi3.so)

python  8690
\t            cc94 __pyx_f_3sfu_3rtp_9_rewriter_14NativeRewriter_fan_out (/work/main/sfu/rtp/_rewriter.cpython-311-x86_64-linux-gnu.so)
\t    55a4f4b88dd0 [unknown] ([unknown])

janus  4242
\t           51c20 srtp_protect_mki (/usr/lib/x86_64-linux-gnu/libsrtp2.so.1.0.0)

janus  4242
\t           7a2b0 aes_gcm_encrypt (/usr/lib/x86_64-linux-gnu/libfreeblpriv3.so)
\t           51c20 srtp_protect_mki (/usr/lib/x86_64-linux-gnu/libsrtp2.so.1.0.0)

janus  4242
\t           11c20 g_hash_table_lookup (/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0.7400.6)

python  8690
\t            1234 __pyx_f_6uvloop_4loop_6Handle__run (/work/main/.venv/lib/python3.11/site-packages/uvloop/loop.cpython-311-x86_64-linux-gnu.so)
"""


def test_samples_fall_into_buckets_by_object_and_system_call() -> None:
    counts = classify(SCRIPT.splitlines())
    assert counts == {
        ("kernel_send", "_copy_from_iter"): 1,
        ("kernel_delivery", "net_rx_action"): 1,  # the receivers' work inside our send
        ("kernel_wait", "finish_task_switch.isra.0"): 1,
        ("kernel_receive", "udp_recvmsg"): 1,
        ("interpreter", "_Py_dict_lookup"): 1,
        ("srtp", "srtp_stream_list_get"): 1,
        ("sfu_code", "__pyx_f_3sfu_3rtp_9_rewriter_14NativeRewriter_fan_out"): 1,
        ("srtp", "srtp_protect_mki"): 1,
        ("srtp", "aes_gcm_encrypt"): 1,  # NSS, under Debian's libsrtp2
        ("sfu_code", "g_hash_table_lookup"): 1,
        ("event_loop", "__pyx_f_6uvloop_4loop_6Handle__run"): 1,
    }
    out = breakdown(counts, us_per_packet=11.0)
    assert out["samples"] == 11
    us = out["us_per_forwarded_packet"]
    assert us["srtp"] == 3.0 and us["kernel_send"] == 1.0 and us["other"] == 0.0
    assert sum(us.values()) == pytest.approx(11.0)
    # the transport: send + delivery + receive + SRTP
    assert out["transport_us"] == pytest.approx(6.0)
    # the leaf function counts, not its callers: ours stopped in the stream lookup, Janus's in protect
    assert out["top_functions_share"]["srtp"] == {
        "srtp_stream_list_get": round(1 / 11, 4),
        "srtp_protect_mki": round(1 / 11, 4),
        "aes_gcm_encrypt": round(1 / 11, 4),
    }


SENDER = """
import socket, time
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(("127.0.0.1", 0))
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
addr, data, end = sink.getsockname(), b"x" * 1200, time.monotonic() + 20
print("ready", flush=True)
while time.monotonic() < end:
    for _ in range(64):
        out.sendto(data, addr)
    sink.setblocking(False)
    try:
        while True:
            sink.recv(2048)
    except BlockingIOError:
        pass
"""


def test_perf_finds_a_udp_sender_in_the_kernel_send_path() -> None:
    """A process that only sends datagrams on loopback (and drains them) is profiled for real: its
    CPU lands in the kernel's send path and the delivery it is charged for, not in 'other'."""
    if shutil.which("perf") is None:
        pytest.skip("perf is not installed (make system-deps installs Debian's linux-perf)")
    proc = subprocess.Popen([sys.executable, "-c", SENDER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        recorder = PerfRecorder([proc.pid], hz=999)
        recorder.start()
        time.sleep(2.0)
        counts = recorder.stop()
    finally:
        proc.kill()
        proc.wait()
    out = breakdown(counts, us_per_packet=1.0)
    share = out["share"]
    assert out["samples"] > 100
    assert set(share) == set(BUCKETS)
    assert share["kernel_send"] + share["kernel_delivery"] + share["kernel_receive"] > 0.4, share
    assert share["kernel_send"] > share["other"], share
    assert share["interpreter"] > 0, share
