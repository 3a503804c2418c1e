"""Packets on the loopback wire, read and written without tcpdump: a sniffer and a pcap writer.

`LoopbackCapture` reads every IPv4/UDP datagram crossing ``lo`` with a Linux packet socket
(AF_PACKET, root only; the tests run as root, as PEERS.md says SIPp's pcap play needs), so a
test can see exactly what a peer such as SIPp put on the wire and when: its RTP timestamps,
payloads and arrival times. It runs in a thread that stops within 0.1 s of `stop`, and keeps
at most ``max_packets``.

`write_pcap` writes the classic libpcap format (magic a1b2c3d4, version 2.4, link type 1
Ethernet) that SIPp's ``play_pcap_audio`` reads: a 24-octet file header, then per packet a
16-octet record header and an Ethernet + IPv4 + UDP frame. SIPp replaces the addresses and
ports, so those in the frame only need to be well formed.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4  # on lo every datagram is seen twice: keep the incoming copy only
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """One UDP datagram seen on the loopback interface."""

    at: float  # time.monotonic() when the sniffer read it
    source_port: int
    destination_port: int
    payload: bytes


class LoopbackCapture:
    """Sniff UDP on ``lo`` for the duration of a ``with`` block."""

    def __init__(self, *, source_port: int | None = None, max_packets: int = 200_000) -> None:
        self.source_port = source_port
        self.max_packets = max_packets
        self.datagrams: list[UdpDatagram] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, name="loopback-capture", daemon=True)

    def __enter__(self) -> LoopbackCapture:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop reading (bounded wait) and close the socket."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.datagrams) < self.max_packets:
            try:
                frame, address = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == _PACKET_OUTGOING:
                continue
            datagram = parse_udp_frame(frame, time.monotonic())
            if datagram is None:
                continue
            if self.source_port is None or datagram.source_port == self.source_port:
                self.datagrams.append(datagram)


def parse_udp_frame(frame: bytes, at: float) -> UdpDatagram | None:
    """The UDP datagram in an Ethernet frame, or None for anything but IPv4/UDP."""
    if len(frame) < 14 + 20 + 8 or struct.unpack_from("!H", frame, 12)[0] != _ETH_P_IP:
        return None
    ip = frame[14:]
    header = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP or len(ip) < header + 8:
        return None
    total = struct.unpack_from("!H", ip, 2)[0]
    source, destination, length, _ = _UDP.unpack_from(ip, header)
    payload = ip[header + 8 : min(total, header + length)]
    return UdpDatagram(at, source, destination, bytes(payload))


# ----------------------------------------------------------------- pcap
def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, source_port: int, destination_port: int) -> bytes:
    udp = _UDP.pack(source_port, destination_port, 8 + len(payload), 0) + payload
    loopback = bytes((127, 0, 0, 1))
    fields = [0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0, loopback, loopback]
    header = _IPV4.pack(*fields)
    fields[7] = _checksum(header)
    ethernet = bytes(12) + struct.pack("!H", _ETH_P_IP)
    return ethernet + _IPV4.pack(*fields) + udp


def write_pcap(
    path: Path,
    packets: Iterable[tuple[float, bytes]],
    *,
    source_port: int = 6000,
    destination_port: int = 6001,
) -> None:
    """Write ``(seconds, udp_payload)`` pairs as a libpcap file of UDP over IPv4 on Ethernet."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for at, payload in packets:
        frame = _frame(payload, source_port, destination_port)
        seconds = int(at)
        micros = round((at - seconds) * 1_000_000)
        out += struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
