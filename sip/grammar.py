"""RFC 3261 §25 ABNF, as compiled regular expressions.

Each rule is quoted above its regex (the h11 ``_abnf.py`` model). Only the rules the parser
needs are here; composite structures (Via, name-addr, URIs) are parsed by small functions in
`sip.headers` and `sip.uri` that use these building blocks. Text is handled as ``str`` decoded
with ``surrogateescape``, so every byte of the wire survives a parse/serialise round trip.
"""

from __future__ import annotations

import re

# alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = rf"[{TOKEN_CHARS}]+"
TOKEN_RE = re.compile(TOKEN)

# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
# callid = word [ "@" word ]
CALLID_RE = re.compile(rf"{WORD}(?:@{WORD})?")

# Method = INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method
# extension-method = token
METHOD_RE = TOKEN_RE

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT    (literal strings in ABNF are case-insensitive)
SIP_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)

# Status-Code = 3DIGIT ; restricted to 100-699 by §7.2
STATUS_CODE_RE = re.compile(r"[1-6][0-9][0-9]")

# Request-Line = Method SP Request-URI SP SIP-Version CRLF
# (exactly one SP between elements: RFC 4475 §3.1.2.9 lets us reject extra spaces)
REQUEST_LINE_RE = re.compile(rf"({TOKEN}) ([^ \t\r\n]+) (SIP/[^ \t\r\n]*)")

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
# (an empty phrase after the SP is legal: RFC 4475 §3.1.1.13)
STATUS_LINE_RE = re.compile(r"(SIP/[^ \t\r\n]*) ([0-9]+) ?([^\r\n]*)", re.IGNORECASE)

# header-name = token ; HCOLON = *( SP / HTAB ) ":" SWS
HEADER_LINE_RE = re.compile(rf"({TOKEN})[ \t]*:[ \t]*(.*)", re.DOTALL)

# LWS = [*WSP CRLF] 1*WSP ; SWS = [LWS]   (after unfolding, LWS is runs of SP/HTAB)
SWS = r"[ \t]*"

# SLASH = SWS "/" SWS
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
SENT_PROTOCOL_RE = re.compile(rf"({TOKEN}){SWS}/{SWS}({TOKEN}){SWS}/{SWS}({TOKEN})")

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING = r'"(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
QUOTED_STRING_RE = re.compile(QUOTED_STRING)

# hostname = *( domainlabel "." ) toplabel [ "." ]
# domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
# toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
# (underscores are accepted: deployed stacks put them in host names; the top label must
# still start with a letter, so "127.0.0.15555" or "1.2.3.4.5" is neither a name nor an IPv4)
HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?\.)*"
    r"[A-Za-z](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?\.?"
)
# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
# port = 1*DIGIT
PORT_RE = re.compile(r"[0-9]{1,5}")

# 1*DIGIT, for Content-Length, Max-Forwards, Expires and CSeq numbers
DIGITS_RE = re.compile(r"[0-9]+")

# Media types: m-type SLASH m-subtype *(SEMI m-parameter)
MEDIA_TYPE_RE = re.compile(rf"({TOKEN}){SWS}/{SWS}({TOKEN})(.*)", re.DOTALL)

MAX_UINT32 = 2**32 - 1
