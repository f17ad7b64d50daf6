#!/usr/bin/python3
"""Signature base strings and signatures computed by oauthlib (Debian's
python3-oauthlib), an implementation independent of ours. Writes a JSON
list of cases; tests/unit/lti/oauth_vectors.c recomputes each with lti/.
RFC 5849's own example (section 3.4.1) comes first, with the base string
the RFC prints, so oauthlib itself is checked against the RFC too."""
import json
import random
import sys
from urllib.parse import quote

from oauthlib.oauth1.rfc5849 import signature

RFC_BASE = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q"
    "%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_"
    "key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m"
    "ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk"
    "9d7dh3k39sjv7"
)


def case(url, body, header_params, secret, method="HMAC-SHA1", name=""):
    query = url.split("?", 1)[1] if "?" in url else ""
    params = signature.collect_parameters(
        uri_query=query, body=body, exclude_oauth_signature=True, with_realm=False
    )
    params += [(k, v) for k, v in header_params]
    base_uri = signature.base_string_uri(url)
    base = signature.signature_base_string("POST", base_uri, signature.normalize_parameters(params))
    if method == "HMAC-SHA1":
        sig = signature.sign_hmac_sha1(base, secret, "")
    else:
        sig = signature.sign_hmac_sha256(base, secret, "")
    return {
        "name": name,
        "url": url,
        "body": body,
        "header": [[k, v] for k, v in header_params],
        "secret": secret,
        "method": method,
        "base_uri": base_uri,
        "base": base,
        "signature": sig,
    }


def enc(s):
    return quote(s, safe="")


def form(pairs, plus=False):
    out = []
    for k, v in pairs:
        ev = enc(v)
        if plus:
            ev = ev.replace("%20", "+")
        out.append(enc(k) + "=" + ev)
    return "&".join(out)


def main():
    cases = []
    rfc = case(
        "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
        "c2&a3=2+q",
        [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ],
        "j49sk3j29djd",
        name="RFC 5849 section 3.4.1",
    )
    assert rfc["base"] == RFC_BASE, "oauthlib disagrees with RFC 5849"
    cases.append(rfc)

    # the order of names and values that differ where one has an escape and the other
    # an unreserved byte, or where one is a prefix of the other ("%" sorts below them)
    sort_pairs = [("oauth_consumer_key", "key"), ("oauth_nonce", "sortnonce"),
                  ("oauth_timestamp", "1700000000"), ("oauth_signature_method", "HMAC-SHA1"),
                  ("oauth_version", "1.0")]
    for v in ("a b", "a-b", "a~", "a%", "a", "a\u00e9", "a.b", "a_", "A", "a0", "a%20"):
        sort_pairs.append(("custom_dup", v))
    for n in ("c d", "c-d", "c", "c~", "c%", "c.", "c0", "cZ", "c\u00e9"):
        sort_pairs.append((n, "x"))
    random.Random(3986).shuffle(sort_pairs)
    cases.append(case("http://127.0.0.1:8080/lti/launch", form(sort_pairs), [], "secret",
                      name="sort order of escaped and unreserved bytes"))

    rnd = random.Random(5849)
    alphabet = "abcXYZ019 -._~!*'();:@&=+$,/?#[]%\"<>\\^`{|}" + "éñ李🎓\u00a0"
    urls = [
        "http://Tool.Example.COM:80/lti/launch",
        "https://tool.example.com:443/lti/launch",
        "https://tool.example.com:8443/prefix/lti/launch",
        "HTTPS://TOOL.example.com/lti/launch?moodle=1&x=a%20b&x=a+c",
        "http://127.0.0.1:8080/lti/launch",
        "https://tool.example.com/p%C3%A4th/lti/launch",
    ]
    secrets = ["secret", "s&cr=t%+ü", "kd94hf93k423kf44", "0123456789abcdef" * 4]
    for i in range(120):
        pairs = [
            ("lti_message_type", "basic-lti-launch-request"),
            ("lti_version", "LTI-1p0"),
            ("resource_link_id", "rl-%d" % i),
            ("oauth_consumer_key", "key-%d" % i),
            ("oauth_nonce", "n%016x" % rnd.getrandbits(64)),
            ("oauth_timestamp", str(1700000000 + i)),
            ("oauth_signature_method", "HMAC-SHA1" if i % 2 else "HMAC-SHA256"),
            ("oauth_version", "1.0"),
        ]
        for _ in range(rnd.randint(0, 12)):
            name = "custom_" + "".join(rnd.choice("abc_") for _ in range(rnd.randint(1, 4)))
            value = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 20)))
            pairs.append((name, value))
        if i % 7 == 0:
            pairs.append(("custom_dup", "b"))
            pairs.append(("custom_dup", "a"))
            pairs.append(("custom_dup", ""))
        if i % 11 == 0:
            pairs.append(("lis_result_sourcedid",
                          '{"data":{"instanceid":"2","userid":"4","typeid":null,"launchid":%d},'
                          '"hash":"%064x"}' % (i, rnd.getrandbits(256))))
        rnd.shuffle(pairs)
        method = dict(pairs)["oauth_signature_method"]
        cases.append(case(urls[i % len(urls)], form(pairs, plus=bool(i % 3)), [],
                          secrets[i % len(secrets)], method, name="generated %d" % i))
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
    print("wrote %d oauthlib vectors" % len(cases))


if __name__ == "__main__":
    main()
