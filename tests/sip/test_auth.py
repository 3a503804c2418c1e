"""Digest authentication: RFC 2617 §3.5 and RFC 7616 §3.9.1 vectors, UAC/UAS pairs, fuzzing."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sip.auth import (
    Algorithm,
    AuthResult,
    DigestChallenge,
    DigestCredentials,
    DigestVerifier,
    Qop,
    UnsupportedAlgorithm,
    UnsupportedScheme,
    build_authorization,
    choose_challenge,
    compute_response,
    parse_challenge,
    parse_credentials,
)
from sip.errors import SipParseError

REGAUT01 = Path("/work/shared/conformance/rfc4475/regaut01.dat")


def folded(*lines: str) -> str:
    """A header value laid out as the RFC prints it, folded onto continuation lines."""
    return "\r\n        ".join(lines)


def unfolded(*lines: str) -> str:
    return " ".join(lines)


# RFC 2617 §3.5 (user "Mufasa", password "Circle Of Life", GET /dir/index.html).
RFC2617_CHALLENGE = (
    "Digest",
    'realm="testrealm@host.com",',
    'qop="auth,auth-int",',
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",',
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
)
RFC2617_CREDENTIALS = (
    'Digest username="Mufasa",',
    'realm="testrealm@host.com",',
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",',
    'uri="/dir/index.html",',
    "qop=auth,",
    "nc=00000001,",
    'cnonce="0a4f113b",',
    'response="6629fae49393a05397450978507c4ef1",',
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
)

# RFC 7616 §3.9.1 (user "Mufasa", password "Circle of Life", GET /dir/index.html).
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def rfc7616_challenge(algorithm: str) -> tuple[str, ...]:
    return (
        "Digest",
        'realm="http-auth@example.org",',
        'qop="auth, auth-int",',
        f"algorithm={algorithm},",
        f'nonce="{RFC7616_NONCE}",',
        f'opaque="{RFC7616_OPAQUE}"',
    )


def rfc7616_credentials(algorithm: str, response: str) -> tuple[str, ...]:
    return (
        'Digest username="Mufasa",',
        'realm="http-auth@example.org",',
        'uri="/dir/index.html",',
        f"algorithm={algorithm},",
        f'nonce="{RFC7616_NONCE}",',
        "nc=00000001,",
        f'cnonce="{RFC7616_CNONCE}",',
        "qop=auth,",
        f'response="{response}",',
        f'opaque="{RFC7616_OPAQUE}"',
    )


RFC7616_CASES = [
    pytest.param(Algorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec", id="MD5"),
    pytest.param(
        Algorithm.SHA_256,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        id="SHA-256",
    ),
]


# --- Tier 1: the RFC vectors -------------------------------------------------------------------


@pytest.mark.parametrize("layout", [folded, unfolded])
def test_rfc2617_example(layout: Callable[..., str]) -> None:
    challenge = parse_challenge(layout(*RFC2617_CHALLENGE))
    assert challenge == DigestChallenge(
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop=(Qop.AUTH, Qop.AUTH_INT),
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )
    credentials = parse_credentials(layout(*RFC2617_CREDENTIALS))
    assert credentials == DigestCredentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="6629fae49393a05397450978507c4ef1",
        cnonce="0a4f113b",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
        qop=Qop.AUTH,
        nc=1,
    )
    assert parse_challenge(str(challenge)) == challenge
    assert parse_credentials(str(credentials)) == credentials


def test_rfc2617_response() -> None:
    response = compute_response(
        Algorithm.MD5,
        "Mufasa",
        "Circle Of Life",
        "testrealm@host.com",
        "GET",
        "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop=Qop.AUTH,
        nc=1,
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_build_authorization_answers_like_the_rfc() -> None:
    value = build_authorization(
        parse_challenge(folded(*RFC2617_CHALLENGE)),
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    # The RFC omits algorithm=MD5, which is the default, so the parsed values are equal.
    assert parse_credentials(value) == parse_credentials(folded(*RFC2617_CREDENTIALS))


@pytest.mark.parametrize(("algorithm", "response"), RFC7616_CASES)
def test_rfc7616_challenge_round_trips_exactly(algorithm: Algorithm, response: str) -> None:
    challenge = parse_challenge(folded(*rfc7616_challenge(algorithm.value)))
    assert challenge == DigestChallenge(
        realm="http-auth@example.org",
        nonce=RFC7616_NONCE,
        algorithm=algorithm,
        qop=(Qop.AUTH, Qop.AUTH_INT),
        opaque=RFC7616_OPAQUE,
    )
    assert str(challenge) == unfolded(*rfc7616_challenge(algorithm.value))


@pytest.mark.parametrize(("algorithm", "response"), RFC7616_CASES)
def test_rfc7616_response(algorithm: Algorithm, response: str) -> None:
    digest = compute_response(
        algorithm,
        "Mufasa",
        "Circle of Life",
        "http-auth@example.org",
        "GET",
        "/dir/index.html",
        RFC7616_NONCE,
        qop=Qop.AUTH,
        nc=1,
        cnonce=RFC7616_CNONCE,
    )
    assert digest == response


@pytest.mark.parametrize(("algorithm", "response"), RFC7616_CASES)
def test_rfc7616_credentials_parse_and_round_trip(algorithm: Algorithm, response: str) -> None:
    wire = rfc7616_credentials(algorithm.value, response)
    credentials = parse_credentials(folded(*wire))
    assert credentials == DigestCredentials(
        username="Mufasa",
        realm="http-auth@example.org",
        nonce=RFC7616_NONCE,
        uri="/dir/index.html",
        response=response,
        algorithm=algorithm,
        cnonce=RFC7616_CNONCE,
        opaque=RFC7616_OPAQUE,
        qop=Qop.AUTH,
        nc=1,
    )
    assert str(credentials) == unfolded(*wire)


@pytest.mark.parametrize(("algorithm", "response"), RFC7616_CASES)
def test_rfc7616_build_authorization_is_the_rfc_header(algorithm: Algorithm, response: str) -> None:
    value = build_authorization(
        parse_challenge(folded(*rfc7616_challenge(algorithm.value))),
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce=RFC7616_CNONCE,
    )
    assert value == unfolded(*rfc7616_credentials(algorithm.value, response))


def test_choose_challenge_takes_the_topmost_supported() -> None:
    # RFC 8760 §2.4: the UAS lists its challenges most preferred first.
    values = [
        'Basic realm="http-auth@example.org"',
        unfolded(*rfc7616_challenge("SHA-512-256")),
        unfolded(*rfc7616_challenge("SHA-256")),
        unfolded(*rfc7616_challenge("MD5")),
    ]
    chosen = choose_challenge(values)
    assert chosen is not None and chosen.algorithm is Algorithm.SHA_256
    assert choose_challenge(values[:2]) is None


# --- Parsing details and exact errors ----------------------------------------------------------


def test_params_in_any_order_case_insensitive_with_escapes_and_unknowns() -> None:
    challenge = parse_challenge(
        'DIGEST charset=UTF-8 ,  Nonce="n\\"1" ,QOP="AUTH-INT, auth-conf,Auth",'
        'stale=TRUE, ALGORITHM=sha-256-SESS, domain="sip:a.example  sip:b.example",'
        'Realm="a \\\\ b\\x", userhash=true, x-note="hello, world"'
    )
    assert challenge == DigestChallenge(
        realm="a \\ bx",
        nonce='n"1',
        algorithm=Algorithm.SHA_256_SESS,
        qop=(Qop.AUTH_INT, Qop.AUTH),
        stale=True,
        domain=("sip:a.example", "sip:b.example"),
        userhash=True,
        params=(("charset", "UTF-8"), ("x-note", "hello, world")),
    )
    assert parse_challenge(str(challenge)) == challenge


def test_regaut01_unknown_scheme_is_unsupported() -> None:
    # RFC 4475 §3.3.7: a registrar ignores credentials in a scheme it does not know.
    lines = REGAUT01.read_bytes().split(b"\r\n")
    header = next(line for line in lines if line.lower().startswith(b"authorization:"))
    value = header.partition(b":")[2].strip().decode("utf-8", "surrogateescape")
    assert value == "NoOneKnowsThisScheme opaque-data=here"
    with pytest.raises(UnsupportedScheme) as caught:
        parse_credentials(value)
    assert str(caught.value) == "unsupported auth scheme 'NoOneKnowsThisScheme'"
    assert caught.value.scheme == "NoOneKnowsThisScheme"
    assert caught.value.status_hint == 401
    assert isinstance(caught.value, SipParseError) and isinstance(caught.value, ValueError)


def test_non_digest_challenge_is_unsupported() -> None:
    with pytest.raises(UnsupportedScheme, match=r"^unsupported auth scheme 'Basic'$"):
        parse_challenge('Basic realm="WallyWorld"')


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "auth header value has no scheme"),
        ('"Digest"', "auth header value has no scheme"),
        ('Digest nonce="n"', "no realm in digest challenge"),
        ('Digest realm="r"', "no nonce in digest challenge"),
        ('Digest realm="r",realm="s", nonce="n"', "duplicate auth-param 'realm'"),
        ('Digest,realm="r", nonce="n"', "malformed auth-param at offset 6"),
        ('Digest realm="r" nonce="n"', "malformed auth-param at offset 16"),
        ('Digest realm="r, nonce="n"', "malformed auth-param at offset 24"),
        ('Digest realm="r", nonce="n",', "malformed auth-param at offset 27"),
        ('Digest realm=r/s, nonce="n"', "malformed auth-param at offset 14"),
    ],
)
def test_challenge_errors_are_exact(value: str, message: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_challenge(value)
    assert str(caught.value) == message
    assert caught.value.status_hint == 400


def test_unknown_algorithm_is_unsupported() -> None:
    with pytest.raises(UnsupportedAlgorithm) as caught:
        parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-512-256')
    assert str(caught.value) == "unsupported digest algorithm 'SHA-512-256'"
    assert caught.value.status_hint == 401


CREDENTIALS_BASE = 'Digest username="u", realm="r", nonce="n", uri="sip:r"'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", "no response in digest credentials"),
        (', response="xyz"', "invalid digest response 'xyz'"),
        (', response="ab", qop=auth-conf', "unsupported qop 'auth-conf'"),
        (', response="ab", qop=auth, nc=1, cnonce="c"', "invalid nc '1'"),
        (', response="ab", qop=auth, nc=00000001', "digest credentials with qop lack nc or cnonce"),
        (', response="ab", qop=auth, cnonce="c"', "digest credentials with qop lack nc or cnonce"),
    ],
)
def test_credentials_errors_are_exact(extra: str, message: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_credentials(CREDENTIALS_BASE + extra)
    assert str(caught.value) == message


def test_credentials_without_qop_is_the_rfc2069_form() -> None:
    credentials = parse_credentials(CREDENTIALS_BASE + ', response="AB12"')
    assert (credentials.qop, credentials.nc, credentials.cnonce) == (None, None, None)
    assert credentials.algorithm is Algorithm.MD5


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def md5_hex(data: str | bytes) -> str:
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


def test_build_authorization_without_qop_and_with_userhash() -> None:
    challenge = DigestChallenge(realm="r", nonce="n", algorithm=Algorithm.SHA_256, userhash=True)
    value = build_authorization(
        challenge, username="alice", password="pw", method="REGISTER", uri="sip:r", cnonce="c"
    )
    credentials = parse_credentials(value)
    assert credentials.username == sha256_hex("alice:r") and credentials.userhash
    assert (credentials.qop, credentials.nc, credentials.cnonce) == (None, None, None)
    ha1, ha2 = sha256_hex("alice:r:pw"), sha256_hex("REGISTER:sip:r")
    assert credentials.response == sha256_hex(f"{ha1}:n:{ha2}")


def test_md5_sess_and_auth_int_follow_rfc7616_definitions() -> None:
    body = b"v=0\r\n"
    ha1 = md5_hex(f"{md5_hex('u:r:pw')}:n:c")
    ha2 = md5_hex(f"INVITE:sip:b@r:{md5_hex(body)}")
    args = (Algorithm.MD5_SESS, "u", "pw", "r", "INVITE", "sip:b@r", "n")
    got = compute_response(*args, qop=Qop.AUTH_INT, nc=10, cnonce="c", body=body)
    assert got == md5_hex(f"{ha1}:n:0000000a:c:auth-int:{ha2}")


def test_compute_response_rejects_missing_inputs() -> None:
    args = (Algorithm.MD5, "u", "p", "r", "GET", "/", "n")
    with pytest.raises(ValueError, match="^qop=auth needs nc and cnonce$"):
        compute_response(*args, qop=Qop.AUTH, cnonce="c")
    with pytest.raises(ValueError, match="^qop=auth needs nc and cnonce$"):
        compute_response(*args, qop=Qop.AUTH, nc=1)
    with pytest.raises(ValueError, match="^nc 4294967296 does not fit in 8 hex digits$"):
        compute_response(*args, qop=Qop.AUTH, nc=2**32, cnonce="c")
    with pytest.raises(ValueError, match="^MD5-sess needs a cnonce$"):
        compute_response(Algorithm.MD5_SESS, *args[1:])


def test_quoting_refuses_cr_lf() -> None:
    with pytest.raises(ValueError):
        build_authorization(
            DigestChallenge(realm="r", nonce="n", qop=(Qop.AUTH,)),
            username="a\r\nVia: evil",
            password="p",
            method="GET",
            uri="/",
            cnonce="c",
        )


# --- Tier 2: UAC and UAS on a virtual clock ----------------------------------------------------

SECRET = b"0123456789abcdef-registrar-secret"
T0 = 1000.0


@pytest.fixture
def verifier() -> DigestVerifier:
    return DigestVerifier(realm="voice.example", passwords={"alice": "s3cret"}, secret=SECRET)


def answer(
    challenge_value: str,
    *,
    password: str = "s3cret",
    method: str = "REGISTER",
    body: bytes = b"",
    nc: int = 1,
) -> DigestCredentials:
    value = build_authorization(
        parse_challenge(challenge_value),
        username="alice",
        password=password,
        method=method,
        uri="sip:voice.example",
        cnonce="0a4f113b",
        nc=nc,
        body=body,
    )
    return parse_credentials(value)


def test_challenge_offers_sha256_first_then_md5(verifier: DigestVerifier) -> None:
    values = verifier.challenge(now=T0)
    challenges = [parse_challenge(v) for v in values]
    assert [c.algorithm for c in challenges] == [Algorithm.SHA_256, Algorithm.MD5]
    assert {c.nonce for c in challenges} == {challenges[0].nonce}
    assert all(c.realm == "voice.example" and c.qop == (Qop.AUTH,) for c in challenges)
    assert not any(c.stale for c in challenges)
    assert all(parse_challenge(v).stale for v in verifier.challenge(now=T0, stale=True))


@pytest.mark.parametrize("index", [0, 1], ids=["SHA-256", "MD5"])
def test_round_trip_ok(verifier: DigestVerifier, index: int) -> None:
    credentials = answer(verifier.challenge(now=T0)[index], nc=3)
    assert credentials.qop is Qop.AUTH and credentials.nc == 3
    assert verifier.verify(credentials, "REGISTER", now=T0 + 10) is AuthResult.OK
    assert verifier.verify(credentials, "REGISTER", now=T0 + 300) is AuthResult.OK


def test_uac_picks_sha256_from_verifier_challenges(verifier: DigestVerifier) -> None:
    chosen = choose_challenge(verifier.challenge(now=T0))
    assert chosen is not None and chosen.algorithm is Algorithm.SHA_256


def test_expired_nonce_is_stale_only_with_the_right_password(verifier: DigestVerifier) -> None:
    value = verifier.challenge(now=T0)[0]
    good, bad = answer(value), answer(value, password="guess")
    assert verifier.verify(good, "REGISTER", now=T0 + 300.001) is AuthResult.STALE
    assert verifier.verify(good, "REGISTER", now=T0 - 1) is AuthResult.STALE  # clock went back
    assert verifier.verify(bad, "REGISTER", now=T0 + 301) is AuthResult.FAILED


def test_wrong_password_or_method_or_user_fails(verifier: DigestVerifier) -> None:
    value = verifier.challenge(now=T0)[0]
    assert verifier.verify(answer(value, password="guess"), "REGISTER", T0) is AuthResult.FAILED
    assert verifier.verify(answer(value), "INVITE", T0) is AuthResult.FAILED
    stranger = DigestVerifier(realm="voice.example", passwords={"bob": "s3cret"}, secret=SECRET)
    assert stranger.verify(answer(value), "REGISTER", T0) is AuthResult.FAILED


def test_tampered_or_foreign_nonce_fails(verifier: DigestVerifier) -> None:
    nonce = parse_challenge(verifier.challenge(now=T0)[0]).nonce
    control = DigestChallenge(realm="voice.example", nonce=nonce, qop=(Qop.AUTH,))
    assert verifier.verify(answer(str(control)), "REGISTER", T0) is AuthResult.OK
    # Edit one character of the time stamp, then answer that nonce with the right password.
    tampered = ("B" if nonce[1] != "B" else "C").join((nonce[:1], nonce[2:]))
    foreign = DigestVerifier(realm="voice.example", passwords={}, secret=b"another secret 16b")
    other = parse_challenge(foreign.challenge(now=T0)[0]).nonce
    for bogus in (tampered, other, "short", "!" * 32, nonce[:-4] + "====", ""):
        challenge = DigestChallenge(realm="voice.example", nonce=bogus, qop=(Qop.AUTH,))
        credentials = answer(str(challenge))
        assert verifier.verify(credentials, "REGISTER", T0) is AuthResult.FAILED, bogus


def test_credentials_the_verifier_did_not_offer_fail(verifier: DigestVerifier) -> None:
    offered = parse_challenge(verifier.challenge(now=T0)[0])
    variants = [
        DigestChallenge(realm="elsewhere", nonce=offered.nonce, qop=(Qop.AUTH,)),
        DigestChallenge(realm=offered.realm, nonce=offered.nonce),  # RFC 2069 form
        DigestChallenge(offered.realm, offered.nonce, Algorithm.MD5_SESS, (Qop.AUTH,)),
        DigestChallenge(offered.realm, offered.nonce, qop=(Qop.AUTH_INT,)),
        DigestChallenge(offered.realm, offered.nonce, qop=(Qop.AUTH,), userhash=True),
    ]
    for challenge in variants:
        assert verifier.verify(answer(str(challenge)), "REGISTER", T0) is AuthResult.FAILED


def test_auth_int_and_session_algorithms_round_trip() -> None:
    verifier = DigestVerifier(
        realm="voice.example",
        passwords={"alice": "s3cret"},
        secret=SECRET,
        algorithms=(Algorithm.SHA_256_SESS, Algorithm.MD5_SESS),
        qop=(Qop.AUTH_INT,),
    )
    sdp = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    for value in verifier.challenge(now=T0):
        credentials = answer(value, method="INVITE", body=sdp)
        assert credentials.qop is Qop.AUTH_INT
        assert verifier.verify(credentials, "INVITE", T0, body=sdp) is AuthResult.OK
        assert verifier.verify(credentials, "INVITE", T0, body=b"v=1") is AuthResult.FAILED


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": b"short"},
        {"algorithms": ()},
        {"algorithms": (Algorithm.MD5, Algorithm.MD5)},
        {"qop": ()},
        {"nonce_lifetime_s": 0.0},
    ],
)
def test_verifier_rejects_bad_config(kwargs: dict[str, object]) -> None:
    config: dict[str, object] = {"realm": "r", "passwords": {}, "secret": SECRET, **kwargs}
    with pytest.raises(ValueError):
        DigestVerifier(**config)  # type: ignore[arg-type]  # deliberately ill-typed config


# --- Hypothesis: fuzzing and round trips -------------------------------------------------------

GRAMMAR_SOUP = st.text(alphabet='Digest realmnocqpuhy=",\\ \t\r\n-SHA256MD5xé\x00', max_size=80)
FUZZ = st.one_of(st.text(), GRAMMAR_SOUP, GRAMMAR_SOUP.map(lambda s: "Digest " + s))


@given(FUZZ)
def test_parse_challenge_raises_only_sip_parse_error(value: str) -> None:
    try:
        challenge = parse_challenge(value)
    except SipParseError:
        return
    assert parse_challenge(str(challenge)) == challenge


@given(FUZZ)
def test_parse_credentials_raises_only_sip_parse_error(value: str) -> None:
    try:
        credentials = parse_credentials(value)
    except SipParseError:
        return
    assert parse_credentials(str(credentials)) == credentials


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20)
TOKEN_TEXT = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=8)
URI_TEXT = st.text(string.ascii_letters + string.digits + ":@;=/.", min_size=1, max_size=12)
CHALLENGE_NAMES = {"realm", "nonce", "algorithm", "qop", "opaque", "stale", "domain", "userhash"}
CREDENTIAL_NAMES = {"username", "realm", "nonce", "uri", "response", "algorithm", "cnonce"}
CREDENTIAL_NAMES |= {"opaque", "qop", "nc", "userhash"}


def unknown_params(known: set[str]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    names = TOKEN_TEXT.filter(lambda n: n.lower() not in known)
    pairs = st.lists(st.tuples(names, TEXT), unique_by=lambda p: p[0].lower(), max_size=3)
    return pairs.map(tuple)


@given(
    st.builds(
        DigestChallenge,
        realm=TEXT,
        nonce=TEXT,
        algorithm=st.sampled_from(Algorithm),
        qop=st.lists(st.sampled_from(Qop), unique=True).map(tuple),
        opaque=st.none() | TEXT,
        stale=st.booleans(),
        domain=st.lists(URI_TEXT, max_size=3).map(tuple),
        userhash=st.booleans(),
        params=unknown_params(CHALLENGE_NAMES),
    )
)
def test_challenge_str_parse_round_trip(challenge: DigestChallenge) -> None:
    assert parse_challenge(str(challenge)) == challenge


@given(
    st.builds(
        DigestCredentials,
        username=TEXT,
        realm=TEXT,
        nonce=TEXT,
        uri=TEXT,
        response=st.text("0123456789abcdef", min_size=1, max_size=64),
        algorithm=st.sampled_from(Algorithm),
        cnonce=st.none() | TEXT,
        opaque=st.none() | TEXT,
        qop=st.none() | st.sampled_from(Qop),
        nc=st.none() | st.integers(0, 2**32 - 1),
        userhash=st.booleans(),
        params=unknown_params(CREDENTIAL_NAMES),
    )
)
def test_credentials_str_parse_round_trip(credentials: DigestCredentials) -> None:
    assume(credentials.qop is None or None not in (credentials.nc, credentials.cnonce))
    assert parse_credentials(str(credentials)) == credentials
