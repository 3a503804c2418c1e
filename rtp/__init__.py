"""RTP media: packets, jitter buffer, RTCP statistics, pacing and the UDP endpoint."""
