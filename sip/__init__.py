"""Sans-I/O SIP (RFC 3261): messages, transactions, dialogs, SDP and digest authentication.

Nothing in this package opens a socket, sleeps or reads a clock, except the asyncio shell in
`sip.transport`. Time comes in as ``now`` (seconds on the scale of ``loop.time()``).
"""
