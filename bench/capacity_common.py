"""What the capacity benchmark's server and load generator agree on without talking.

Both sides derive each call's identifiers from its index, so the load generator can tell,
from a received packet alone, which call sent it and which 20 ms tick of the server's
schedule it belongs to: the server's RTP timestamps start at `server_initial_timestamp` and
advance one frame per tick (skipped ticks included), so packet ``k`` of every call is due at
``origin + k * PTIME_S``.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
from typing import Final

PTIME_S: Final = 0.020
FRAME_SAMPLES: Final = 160
LATE_S: Final = 0.005  # the acceptance threshold: a packet more than 5 ms late is late
HOST: Final = "127.0.0.1"

SERVER_SSRC_BASE: Final = 0x5E000000
CALLER_SSRC_BASE: Final = 0x0CA10000

# Linux values (the socket module does not export them)
SO_RCVBUFFORCE: Final = 33
SO_TIMESTAMPNS: Final = 35
SO_RXQ_OVFL: Final = 40


def server_initial_timestamp(call: int) -> int:
    """The first RTP timestamp of the server's stream for ``call``."""
    return (call * 7_919_000 + 12_345) & 0xFFFFFFFF


def server_initial_seq(call: int) -> int:
    """The first RTP sequence number of the server's stream for ``call``."""
    return (call * 7919 + 11) & 0xFFFF


def pin_to_core(core: int) -> None:
    """Run this process on one CPU only (the acceptance item pins server and load apart)."""
    available = os.sched_getaffinity(0)
    if core not in available:
        raise SystemExit(f"core {core} is not available to this process ({sorted(available)})")
    os.sched_setaffinity(0, {core})


def raise_nofile(wanted: int) -> int:
    """Raise the open-file limit to at least ``wanted`` (bounded by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        print(f"warning: RLIMIT_NOFILE hard limit {hard} < {wanted}", file=sys.stderr)
    return target


def big_receive_buffer(sock: socket.socket, octets: int = 64 << 20) -> None:
    """Give a socket a large receive buffer (beyond rmem_max when root), so bursts are kept."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, octets)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, octets)


def cpu_seconds() -> float:
    """User + system CPU time of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
