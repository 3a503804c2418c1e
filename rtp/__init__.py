"""RTP media: packets, jitter buffer, RTCP statistics, pacing and the UDP endpoint."""

import dsp  # noqa: F401  # its import runs the stale-build guard of `dsp.compiled` first
