"""URIs (RFC 3261 §19.1, RFC 3966, RFC 5118), header fields and their typed views (§7.3, §20).

Tier 1 vectors: every accepted value prints back exactly as it came (``str(parse(x)) == x``
where the type keeps its text). Hypothesis: the parsers raise nothing but `SipParseError`,
whatever text they are given (h11's fuzz rule).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.headers import (
    COMPACT_FORMS,
    CSeq,
    HeaderField,
    Headers,
    NameAddr,
    Via,
    canonical_name,
    parse_uint,
    split_list,
)
from sip.uri import HostPort, Uri, parse_hostport, unescape


def exact(message: str) -> str:
    """A `pytest.raises` pattern that matches exactly ``message``."""
    return f"^{re.escape(message)}$"


# ---------------------------------------------------------------------------------------- URIs

# (text, scheme, user, host, port, params, headers)
VALID_URIS = [
    # RFC 3261 §19.1.3 examples
    ("sip:alice@atlanta.com", "sip", "alice", "atlanta.com", None, (), None),
    (
        "sip:alice:secretword@atlanta.com;transport=tcp",
        "sip",
        "alice",
        "atlanta.com",
        None,
        (("transport", "tcp"),),
        None,
    ),
    (
        "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sips",
        "alice",
        "atlanta.com",
        None,
        (),
        "subject=project%20x&priority=urgent",
    ),
    (
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip",
        "+1-212-555-1212",
        "gateway.com",
        None,
        (("user", "phone"),),
        None,
    ),
    ("sips:1212@gateway.com", "sips", "1212", "gateway.com", None, (), None),
    ("sip:alice@192.0.2.4", "sip", "alice", "192.0.2.4", None, (), None),
    (
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        "sip",
        None,
        "atlanta.com",
        None,
        (("method", "REGISTER"),),
        "to=alice%40atlanta.com",
    ),
    # RFC 4475 §3.1.1.9 semiuri: ';' before '@' belongs to the user part
    (
        "sip:user;par=u%40example.net@example.com",
        "sip",
        "user;par=u%40example.net",
        "example.com",
        None,
        (),
        None,
    ),
    ("sip:alice@atlanta.com:5070;lr", "sip", "alice", "atlanta.com", 5070, (("lr", None),), None),
    ("SIP:Alice@Example.COM", "sip", "Alice", "Example.COM", None, (), None),
    ("sip:host.example.com.", "sip", None, "host.example.com.", None, (), None),
    ("sip:_sip._udp.example.com", "sip", None, "_sip._udp.example.com", None, (), None),
    # RFC 5118: bracketed IPv6 references, the port after ']'
    ("sip:[2001:db8::10]", "sip", None, "[2001:db8::10]", None, (), None),
    (
        "sip:user@[2001:db8::10]:5070;transport=udp",
        "sip",
        "user",
        "[2001:db8::10]",
        5070,
        (("transport", "udp"),),
        None,
    ),
    # §4.3 port-ambiguous: the "port" is inside the brackets, so it is part of the address
    ("sip:[2001:db8::10:5070]", "sip", None, "[2001:db8::10:5070]", None, (), None),
    ("sip:user@[::ffff:192.0.2.10]", "sip", "user", "[::ffff:192.0.2.10]", None, (), None),
    ("sip:user@[2001:db8::192.0.2.1]", "sip", "user", "[2001:db8::192.0.2.1]", None, (), None),
    (
        "sip:host;maddr=[2001:db8::1]",
        "sip",
        None,
        "host",
        None,
        (("maddr", "[2001:db8::1]"),),
        None,
    ),
    # RFC 4475 §3.1.1.4 escnull: %00 is a legal escape in a user part
    ("sip:%00@host5.example.com", "sip", "%00", "host5.example.com", None, (), None),
]


@pytest.mark.parametrize(
    ("text", "scheme", "user", "host", "port", "params", "headers"), VALID_URIS
)
def test_sip_uri_vectors(
    text: str,
    scheme: str,
    user: str | None,
    host: str,
    port: int | None,
    params: tuple[tuple[str, str | None], ...],
    headers: str | None,
) -> None:
    uri = Uri.parse(text)
    assert (uri.scheme, uri.user, uri.host, uri.port) == (scheme, user, host, port)
    assert uri.params == params
    assert uri.headers == headers
    assert uri.is_sip
    assert str(uri) == text


def test_sip_uri_password_and_param_lookup() -> None:
    uri = Uri.parse("sip:alice:secretword@atlanta.com;Transport=TCP;lr")
    assert (uri.user, uri.password) == ("alice", "secretword")
    assert uri.param("transport") == "TCP"  # names are case-insensitive
    assert uri.param("lr") == ""  # present without a value
    assert uri.param("maddr") is None


@pytest.mark.parametrize(
    ("text", "number", "params"),
    [
        ("tel:+1-201-555-0123", "+1-201-555-0123", ()),
        ("tel:7042;phone-context=example.com", "7042", (("phone-context", "example.com"),)),
        ("TEL:+358-555-1234567;postd=pp22", "+358-555-1234567", (("postd", "pp22"),)),
    ],
)
def test_tel_uri_vectors(text: str, number: str, params: tuple[tuple[str, str], ...]) -> None:
    uri = Uri.parse(text)
    assert (uri.scheme, uri.user, uri.params, uri.host) == ("tel", number, params, None)
    assert not uri.is_sip
    assert str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "soap.beep://192.0.2.103:3002",
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "urn:service:sos",
        "isbn:2983792873",
        "http://www.example.com/x",
        "name:John_Smith",
        "mailto:a@b.example.com",
    ],
)
def test_other_schemes_are_kept_opaque(text: str) -> None:
    uri = Uri.parse(text)
    assert uri.scheme == text.split(":")[0].lower()
    assert uri.opaque == text.split(":", 1)[1]
    assert uri.host is None
    assert str(uri) == text


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "URI lacks a scheme"),
        ("alice@atlanta.com", "URI lacks a scheme"),
        ("1sip:alice@atlanta.com", "URI lacks a scheme"),
        ("sip:", "URI contains characters that are not allowed"),
        ("<sip:user@example.com>", "URI lacks a scheme"),  # RFC 4475 ltgtruri
        ("sip:user@example.com; lr", "URI contains characters that are not allowed"),  # lwsruri
        ('sip:"user"@example.com', "URI contains characters that are not allowed"),
        ("sip:@example.com", "SIP URI has an empty user part"),
        ("sip:a@b@example.com", "SIP URI has more than one '@'"),
        ("sip:user@", "SIP URI lacks a host"),
        ("sip:user@example.com:", "invalid port"),
        ("sip:user@example.com:65536", "invalid port"),
        ("sip:user@example.com:50x", "invalid port"),
        ("sip:user@-example.com", "invalid host"),
        ("sip:user@example-.com", "invalid host"),
        ("sip:user@exa_mple.com!", "invalid host"),
        # RFC 3261 §25.1: toplabel = ALPHA ...; these are neither names nor IPv4 addresses
        ("sip:user@127.0.0.15555", "invalid host"),
        ("sip:user@1.2.3.4.5", "invalid host"),
        ("sip:user@192.0.2.256", "invalid IPv4 address in host"),
        # RFC 5118 §4.2 ipv6-bad: an IPv6 address needs its brackets
        ("sip:user@2001:db8::10", "invalid host"),
        ("sip:user@[2001:db8::10", "IPv6 reference lacks its closing ']'"),
        # RFC 5118 §4.10: three colons are admitted by RFC 3261's ABNF, not by IPv6
        ("sip:user@[2001:db8:::192.0.2.1]", "invalid IPv6 address in host"),
        ("sip:user@[]", "invalid IPv6 address in host"),
        ("sip:user@[2001:db8::10]5060", "invalid port"),
        ("sip:user@example.com;;lr", "empty or invalid parameter in SIP URI"),
        ("sip:user@example.com;=x", "empty or invalid parameter in SIP URI"),
        ("sip:user@example.com;maddr=", "parameter 'maddr' has no value in SIP URI"),
        ("sip:user@example.com;lr=a=b", "parameter 'lr' has an invalid value in SIP URI"),
        ("sip:user@example.com?", "SIP URI has an empty header part"),
        ("tel:;phone-context=x", "tel URI lacks a number"),
    ],
)
def test_invalid_uris_name_the_problem(text: str, error: str) -> None:
    with pytest.raises(SipParseError, match=exact(error)):
        Uri.parse(text)


def test_escapes_are_decoded_once_never_recursively() -> None:
    # RFC 4475 §3.1.1.3 esc01: value%2541 is "value%41", not "valueA"
    assert unescape("value%2541") == "value%41"
    assert unescape("%75se%72") == "user"
    assert unescape("%zz%4") == "%zz%4"  # not escapes: left alone
    uri = Uri.parse("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips%3Auser%40example.com"  # kept as received
    assert unescape(uri.user or "") == "sips:user@example.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", HostPort("example.com")),
        ("example.com:5060", HostPort("example.com", 5060)),
        ("192.0.2.1:0", HostPort("192.0.2.1", 0)),
        ("[2001:db8::9:1]:6050", HostPort("[2001:db8::9:1]", 6050)),
        ("[::1]", HostPort("[::1]")),
    ],
)
def test_hostport(text: str, expected: HostPort) -> None:
    hostport = parse_hostport(text)
    assert hostport == expected
    assert hostport.is_ipv6 == text.startswith("[")
    assert str(hostport) == text


# ---------------------------------------------------------------------------------------- Via


@pytest.mark.parametrize(
    ("value", "transport", "sent_by", "params", "text"),
    [
        (
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
            "UDP",
            HostPort("pc33.atlanta.com"),
            (("branch", "z9hG4bK776asdhds"),),
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
        ),
        # RFC 4475 wsinv: LWS around every separator, after unfolding
        (
            "SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw",
            "UDP",
            HostPort("192.0.2.2"),
            (("branch", "390skdjuw"),),
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw",
        ),
        (
            "SIP/2.0/TCP host : 5060 ; branch = z9hG4bKx ; rport",
            "TCP",
            HostPort("host", 5060),
            (("branch", "z9hG4bKx"), ("rport", None)),
            "SIP/2.0/TCP host:5060;branch=z9hG4bKx;rport",
        ),
        (
            "sip/2.0/udp Host.Example.com",
            "UDP",
            HostPort("Host.Example.com"),
            (),
            "SIP/2.0/UDP Host.Example.com",
        ),
        # RFC 4475 transports: unknown transports are extension tokens
        (
            "SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
            "UNKNOWN",
            HostPort("t4.example.com"),
            (("branch", "z9hG4bKasd0f3en"),),
            "SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
        ),
        # RFC 5118 §4.5: received with and without brackets
        (
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
            "UDP",
            HostPort("[2001:db8::9:1]"),
            (("received", "[2001:db8::9:255]"), ("branch", "z9hG4bKas3-111")),
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
        ),
        (
            "SIP/2.0/UDP [2001:db8::9:1]:6050;received=2001:db8::9:255",
            "UDP",
            HostPort("[2001:db8::9:1]", 6050),
            (("received", "2001:db8::9:255"),),
            "SIP/2.0/UDP [2001:db8::9:1]:6050;received=2001:db8::9:255",
        ),
        (
            "SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19",
            "UDP",
            HostPort("[::ffff:192.0.2.10]", 19823),
            (("branch", "z9hG4bKbh19"),),
            "SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19",
        ),
    ],
)
def test_via_vectors(
    value: str,
    transport: str,
    sent_by: HostPort,
    params: tuple[tuple[str, str | None], ...],
    text: str,
) -> None:
    via = Via.parse(value)
    assert (via.transport, via.sent_by, via.params, via.protocol) == (
        transport,
        sent_by,
        params,
        "SIP/2.0",
    )
    assert str(via) == text
    assert Via.parse(str(via)) == via


def test_via_branch_rport_and_stamping() -> None:
    via = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport")
    assert via.branch == "z9hG4bKabc"
    assert via.has_rport
    stamped = via.with_params(received="127.0.0.1", rport="40000")
    assert (
        str(stamped)
        == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport=40000;received=127.0.0.1"
    )
    bare = Via.parse("SIP/2.0/UDP 192.0.2.1")
    assert bare.branch is None and not bare.has_rport  # RFC 2543: no branch at all


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("SIP/2.0 192.0.2.1", "Via has an invalid sent-protocol"),
        ("/2.0/UDP 192.0.2.1", "Via has an invalid sent-protocol"),
        ("SIP/2.0/UDP", "Via lacks whitespace before sent-by"),
        ("SIP/2.0/UDP192.0.2.1", "Via lacks whitespace before sent-by"),
        ("SIP/2.0/UDP 192.0.2.15;;,;,,", "empty or invalid parameter in Via"),  # badinv01
        ("SIP/2.0/UDP host;;branch=x", "empty or invalid parameter in Via"),
        ("SIP/2.0/UDP host;branch=", "parameter 'branch' has no value in Via"),
        ("SIP/2.0/UDP host:", "invalid port"),
        ("SIP/2.0/UDP host:99999", "invalid port"),
        ("SIP/2.0/UDP [2001:db8::1", "IPv6 reference lacks its closing ']'"),
        # only the colon before the port may have LWS around it: "ho st" is no host
        ("SIP/2.0/UDP ho st;branch=z9hG4bKx", "invalid host"),
        ("SIP/2.0/UDP 127.0.0.15555;branch=z9hG4bKx", "invalid host"),  # PROTOS via-hostcolon
    ],
)
def test_invalid_via(value: str, error: str) -> None:
    with pytest.raises(SipParseError, match=exact(error)):
        Via.parse(value)


# ---------------------------------------------------------------------------------- name-addr


@pytest.mark.parametrize(
    ("value", "display", "uri", "params", "bracketed"),
    [
        (
            '"Bob" <sip:bob@biloxi.com>;tag=a6c85cf',
            '"Bob"',
            "sip:bob@biloxi.com",
            (("tag", "a6c85cf"),),
            True,
        ),
        ("Bob <sip:bob@biloxi.com>", "Bob", "sip:bob@biloxi.com", (), True),
        (
            "sip:bob@biloxi.com;tag=1928301774",
            None,
            "sip:bob@biloxi.com",
            (("tag", "1928301774"),),
            False,
        ),
        # RFC 4475 §3.3.12 cparam01: without <>, ;unknownparam is a header (contact) param
        (
            "sip:+19725552222@gw1.example.net;unknownparam",
            None,
            "sip:+19725552222@gw1.example.net",
            (("unknownparam", None),),
            False,
        ),
        # §3.3.13 cparam02: inside <>, it is a URI param and the header has none
        (
            "<sip:+19725552222@gw1.example.net;unknownparam>",
            None,
            "sip:+19725552222@gw1.example.net;unknownparam",
            (),
            True,
        ),
        # §3.3.14 regescrt: escaped headers are legal inside <>
        (
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
            None,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            (),
            True,
        ),
        # §3.1.1.6 lwsdisp: no LWS between a token display name and '<'
        (
            "caller<sip:caller@example.com>;tag=323",
            "caller",
            "sip:caller@example.com",
            (("tag", "323"),),
            True,
        ),
        # quoted-pairs (wsinv, intmeth): an escaped quote does not end the string
        (
            '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>;tag=98asjd8',
            '"J Rosenberg \\\\\\""',
            "sip:jdrosen@example.com",
            (("tag", "98asjd8"),),
            True,
        ),
        (
            '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" '
            "<sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
            '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"',
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com",
            (),
            True,
        ),
        (
            "<sip:bob@biloxi.com;transport=tcp>;tag=x;expires=30",
            None,
            "sip:bob@biloxi.com;transport=tcp",
            (("tag", "x"), ("expires", "30")),
            True,
        ),
        (
            "The Operator <tel:+1-201-555-0123>;tag=9",
            "The Operator",
            "tel:+1-201-555-0123",
            (("tag", "9"),),
            True,
        ),
        (
            '"Caller" <sip:caller@[2001:db8::9:1]>',
            '"Caller"',
            "sip:caller@[2001:db8::9:1]",
            (),
            True,
        ),
        ("<isbn:2983792873>;tag=3234233", None, "isbn:2983792873", (("tag", "3234233"),), True),
        # RFC 5626: a quoted-string value may hold '<', ':' and '='
        (
            '<sip:a@192.0.2.1>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'
            ";reg-id=1;q=0.5",
            None,
            "sip:a@192.0.2.1",
            (
                ("+sip.instance", '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'),
                ("reg-id", "1"),
                ("q", "0.5"),
            ),
            True,
        ),
    ],
)
def test_name_addr_vectors(
    value: str,
    display: str | None,
    uri: str,
    params: tuple[tuple[str, str | None], ...],
    bracketed: bool,
) -> None:
    parsed = NameAddr.parse(value, header="Contact")
    assert (parsed.display_name, str(parsed.uri), parsed.params, parsed.bracketed) == (
        display,
        uri,
        params,
        bracketed,
    )
    # what it prints parses back to the same thing (LWS normalised)
    assert NameAddr.parse(str(parsed), header="Contact") == parsed


def test_param_ownership_survives_adding_a_tag() -> None:
    bare = NameAddr.parse("sip:+19725552222@gw1.example.net;unknownparam", header="To")
    tagged = bare.with_tag("abc")
    # the tag forces brackets, so unknownparam stays a header parameter, not a URI one
    assert str(tagged) == "<sip:+19725552222@gw1.example.net>;unknownparam;tag=abc"
    assert NameAddr.parse(str(tagged), header="To").uri.params == ()
    assert tagged.tag == "abc" and bare.tag is None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ('"Mr. J. User <sip:j.user@example.com>', "unterminated quoted display name in To"),
        ('"Bob" sip:bob@example.com', "quoted display name without <addr-spec> in To"),
        (
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",  # RFC 4475 baddn
            "unquoted display name is not a token list in To",
        ),
        ("<sip:a@b.example.com", "missing '>' in To"),
        ("<sip:user@example.com >", "whitespace inside <addr-spec> in To"),  # badaspec
        ("<sip:a@b.example.com>junk", "unexpected text after To"),
        ("<sip:a@b.example.com>;;tag=x", "empty or invalid parameter in To"),
        # gen-value is token / host / quoted-string: never '=' (PROTOS c07-sip case 860)
        ("<sip:a@b.example.com>;tag===", "parameter 'tag' has an invalid value in To"),
        ("<sip:a@b.example.com>;tag=a b", "parameter 'tag' has an invalid value in To"),
        ('<sip:a@b.example.com>;x="open', "parameter 'x' has an invalid value in To"),
        # RFC 4475 regbadct: an addr-spec with '?' must be in <>
        (
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "addr-spec with '?' or ',' must be in <> in To",
        ),
        ("", "URI lacks a scheme"),
        ("*", "URI lacks a scheme"),
    ],
)
def test_invalid_name_addr(value: str, error: str) -> None:
    with pytest.raises(SipParseError, match=exact(error)):
        NameAddr.parse(value, header="To")


# ----------------------------------------------------------------------------------- CSeq, uint


@pytest.mark.parametrize(
    ("value", "seq", "method"),
    [
        ("314159 INVITE", 314159, "INVITE"),
        ("0009\t INVITE", 9, "INVITE"),
        ("4294967295 NEWMETHOD", 2**32 - 1, "NEWMETHOD"),
        ("0 ACK", 0, "ACK"),
    ],
)
def test_cseq(value: str, seq: int, method: str) -> None:
    assert CSeq.parse(value) == CSeq(seq, method)
    assert str(CSeq(seq, method)) == f"{seq} {method}"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("4294967296 INVITE", "CSeq number exceeds 2**32-1"),  # RFC 4475 scalar02
        ("1INVITE", "CSeq is malformed"),
        ("-1 INVITE", "CSeq is malformed"),
        ("1 INV ITE", "CSeq is malformed"),
        ("", "CSeq is malformed"),
        ("1 INVITE;x", "CSeq is malformed"),
    ],
)
def test_invalid_cseq(value: str, error: str) -> None:
    with pytest.raises(SipParseError, match=exact(error)):
        CSeq.parse(value)


def test_parse_uint_bounds_and_huge_numbers() -> None:
    assert parse_uint(" 0068 ", header="Max-Forwards", maximum=255) == 68
    with pytest.raises(SipParseError, match="^Max-Forwards is out of range$"):
        parse_uint("300", header="Max-Forwards", maximum=255)
    with pytest.raises(SipParseError, match="^Expires is out of range$"):
        parse_uint("9" * 5000, header="Expires", maximum=2**32 - 1)  # no quadratic int()
    with pytest.raises(SipParseError, match="^Content-Length is not a number$"):
        parse_uint("-999", header="Content-Length", maximum=2**32 - 1)


# --------------------------------------------------------------------------------- Headers


def test_compact_forms_expand_for_lookup_and_stay_on_the_wire() -> None:
    headers = Headers(
        [
            ("v", "SIP/2.0/UDP a.example.com"),
            ("i", "abc@x"),
            ("m", "<sip:a@b>"),
            ("f", "<sip:c@d>;tag=1"),
            ("t", "<sip:e@f>"),
            ("l", "0"),
            ("k", "timer"),
            ("s", "hello"),
            ("c", "application/sdp"),
        ]
    )
    for compact, name in (
        ("v", "Via"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("f", "From"),
        ("t", "To"),
        ("l", "Content-Length"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("c", "Content-Type"),
    ):
        assert compact in headers and name in headers and name.upper() in headers
        assert headers.get(name) == headers.get(compact)
        assert canonical_name(compact) == canonical_name(name) == name.lower()
    assert bytes(headers).startswith(b"v: SIP/2.0/UDP a.example.com\r\n")
    assert COMPACT_FORMS["v"] == "via" and len(set(COMPACT_FORMS.values())) == len(COMPACT_FORMS)


def test_headers_multimap_order_lists_and_edits() -> None:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("Subject", "a, b"),
            ("v", "SIP/2.0/UDP c;branch=z9hG4bK3"),
            ("X-Unknown", "kept ;;,, as is"),
        ]
    )
    assert headers.values("via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]
    assert headers.values("subject") == ["a, b"]  # not a list header: never split
    assert headers.get("x-unknown") == "kept ;;,, as is"
    top = headers.replace_first("via", "SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.9")
    assert top.values("via")[0].endswith("received=192.0.2.9")
    assert top.values("via")[1:] == headers.values("via")[1:]
    assert [f.name for f in headers.with_prepended("Via", "x")][0] == "Via"
    assert headers.with_set("Subject", "c").values("subject") == ["c"]
    assert "via" not in headers.without("v")
    assert headers.with_added("Subject", "d").values("subject") == ["a, b", "d"]
    assert len(headers) == 4 and headers == Headers(list(headers))


def test_header_field_keeps_its_raw_bytes() -> None:
    raw = b"Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n"
    field = HeaderField("Via", "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw", raw)
    assert bytes(field) == raw
    assert bytes(HeaderField("X-New", "v")) == b"X-New: v\r\n"
    # equality is by meaning: raw bytes and name spelling do not matter
    assert Headers([field]) == Headers([("v", field.value)])


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ('<sip:a@b>;q=0.5, "Doe, John" <sip:c@d>', ["<sip:a@b>;q=0.5", '"Doe, John" <sip:c@d>']),
        ("<sip:a@b;x=1,2>, <sip:c@d>", ["<sip:a@b;x=1,2>", "<sip:c@d>"]),
        ('"a \\" , b" <sip:x@y>', ['"a \\" , b" <sip:x@y>']),
        ("timer ,  replaces", ["timer", "replaces"]),
    ],
)
def test_split_list_respects_quotes_and_brackets(value: str, items: list[str]) -> None:
    assert split_list(value, header="contact") == items


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("a,,b", "empty element in via"),
        ("a,", "empty element in via"),
        (",a", "empty element in via"),
        ('"open, b', "unterminated quoted string in via"),
    ],
)
def test_split_list_rejects_empty_elements(value: str, error: str) -> None:
    with pytest.raises(SipParseError, match=exact(error)):
        split_list(value, header="via")


# ------------------------------------------------------------------------------- Hypothesis

# Text built from the pieces SIP grammar cares about, so the parsers get past their first checks.
_PIECES = [
    *"sip:SIP/2.0 UDP@[]<>\";,=?%&\\\t:abcz019._-+~*'()!$",
    "\x00",
    "\x7f",
    "é",
    "\udcff",
    "::",
    "[::1]",
    "[2001:db8::1]",
    "sip:",
    "sips:",
    "tel:",
    "SIP/2.0/UDP ",
    ";tag=",
    ";branch=z9hG4bK",
    "%41",
    "%",
    "<sip:a@b>",
    '"q\\"d"',
    "user@",
    ":5060",
]
_SIPISH = st.lists(st.sampled_from(_PIECES), max_size=25).map("".join)
_ANY_TEXT = st.one_of(_SIPISH, st.text(max_size=60))


@settings(max_examples=250, deadline=None)
@given(_ANY_TEXT)
def test_uri_parse_raises_only_sip_parse_error(text: str) -> None:
    try:
        uri = Uri.parse(text)
    except SipParseError:
        return
    assert str(uri) == text  # an accepted URI keeps its text exactly


@settings(max_examples=250, deadline=None)
@given(_ANY_TEXT)
def test_via_parse_raises_only_sip_parse_error(text: str) -> None:
    try:
        via = Via.parse(text)
    except SipParseError:
        return
    assert Via.parse(str(via)) == via


@settings(max_examples=250, deadline=None)
@given(_ANY_TEXT)
def test_name_addr_parse_raises_only_sip_parse_error(text: str) -> None:
    try:
        parsed = NameAddr.parse(text, header="From")
    except SipParseError:
        return
    assert NameAddr.parse(str(parsed), header="From") == parsed


@settings(max_examples=200, deadline=None)
@given(_ANY_TEXT)
def test_cseq_and_list_splitting_raise_only_sip_parse_error(text: str) -> None:
    for parse in (
        CSeq.parse,
        lambda t: split_list(t, header="via"),
        lambda t: parse_uint(t, header="Expires", maximum=2**32 - 1),
    ):
        try:
            parse(text)
        except SipParseError:
            pass


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = _LETTERS + "0123456789"
# a domain label that is also a valid top label: ALPHA *( alphanum / "-" ) alphanum
_LABEL = st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(_LETTERS),
    st.text(_ALNUM + "-", max_size=6),
    st.sampled_from(_ALNUM),
)
_USER = st.builds(
    lambda plain, escape: plain + escape,
    st.text(_ALNUM + "-_.!~*'()", min_size=1, max_size=10),
    st.sampled_from(["", "%41", "%00", "%3A"]),
)
_HOST = st.one_of(
    st.builds(lambda labels: ".".join(labels), st.lists(_LABEL, min_size=1, max_size=4)),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.one_of(st.none(), _USER),
    host=_HOST,
    port=st.one_of(st.none(), st.integers(0, 65535)),
    params=st.lists(st.tuples(_LABEL, st.one_of(st.none(), _LABEL)), max_size=3),
)
def test_generated_sip_uris_round_trip(
    scheme: str,
    user: str | None,
    host: str,
    port: int | None,
    params: list[tuple[str, str | None]],
) -> None:
    text = f"{scheme}:{user + '@' if user else ''}{host}{'' if port is None else f':{port}'}"
    text += "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)
    uri = Uri.parse(text)
    assert (uri.scheme, uri.user, uri.host, uri.port) == (scheme, user, host, port)
    assert uri.params == tuple(params)
    assert str(uri) == text
