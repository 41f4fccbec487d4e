"""A test-only identity provider: the "game's own sign-in" the generated clients' token providers
call, and `serve --trust-issuer` trusts.

It publishes a JWKS and mints RS256 access tokens (`aud` the contract's audience, `scope`
`authenticated`, no `nbf`, as many providers) for any subject, living --lifetime seconds. It can
be told to make the next tokens of a subject already expired, as a token revoked or a device
clock far off would be: serve answers such a token 401, and the client must ask again.

    GET  /.well-known/jwks.json           the public key
    GET  /.well-known/openid-configuration
    GET  /token?sub=SUBJECT               {"access_token", "token_type", "expires_in", "expires_at"}
    POST /expire-next?sub=SUBJECT&count=N the next N tokens of SUBJECT are already expired
    GET  /stats                           {"issued": {SUBJECT: n}, "expired": {SUBJECT: n}}

Usage: test_idp.py [--port PORT] [--audience AUD] [--lifetime SECONDS]
Prints `issuer URL` once it listens, then serves until killed. Needs `cryptography`
(tests/requirements.txt); tests/clients/sign_in.py runs it in-process.
"""

import argparse
import base64
import collections
import http.server
import json
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Past serve's 5 s leeway on `exp`, so the token is refused however the clocks stand.
EXPIRED_AGO_SECONDS = 120


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def uint(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class TestIdp:
    """The provider's state and its HTTP server (a thread); `issuer` is its URL."""

    def __init__(self, port=0, audience="gamebackend", lifetime=120):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-idp-1"
        self.audience, self.lifetime = audience, lifetime
        self.lock = threading.Lock()
        self.expire_next = collections.Counter()
        self.issued = collections.Counter()
        self.expired = collections.Counter()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.issuer = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def jwks(self):
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": uint(numbers.n), "e": uint(numbers.e)}]}

    def mint(self, subject):
        """A token for `subject`, expired already if that was asked for; its claims."""
        now = int(time.time())
        with self.lock:
            expired = self.expire_next[subject] > 0
            if expired:
                self.expire_next[subject] -= 1
                self.expired[subject] += 1
            self.issued[subject] += 1
        exp = now - EXPIRED_AGO_SECONDS if expired else now + self.lifetime
        claims = {"iss": self.issuer, "sub": subject, "aud": self.audience, "scope": "authenticated",
                  "iat": min(now, exp - 60), "exp": exp}
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode("ascii")
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode("ascii") + "." + b64url(signature), claims

    def stats(self):
        with self.lock:
            return {"issued": dict(self.issued), "expired": dict(self.expired)}

    def _handler(self):
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def query(self):
                url = urllib.parse.urlsplit(self.path)
                return url.path, {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}

            def do_GET(self):
                path, query = self.query()
                if path == "/.well-known/jwks.json":
                    self.answer(200, idp.jwks())
                elif path == "/.well-known/openid-configuration":
                    self.answer(200, {"issuer": idp.issuer, "jwks_uri": idp.issuer + "/.well-known/jwks.json",
                                      "id_token_signing_alg_values_supported": ["RS256"]})
                elif path == "/token" and query.get("sub"):
                    token, claims = idp.mint(query["sub"])
                    self.answer(200, {"access_token": token, "token_type": "Bearer",
                                      "expires_in": claims["exp"] - int(time.time()), "expires_at": claims["exp"]})
                elif path == "/stats":
                    self.answer(200, idp.stats())
                else:
                    self.answer(404, {"message": "not found"})

            def do_POST(self):
                path, query = self.query()
                if path == "/expire-next" and query.get("sub"):
                    with idp.lock:
                        idp.expire_next[query["sub"]] += int(query.get("count", "1"))
                    self.answer(204)
                else:
                    self.answer(404, {"message": "not found"})

        return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--audience", default="gamebackend")
    parser.add_argument("--lifetime", type=int, default=120)
    args = parser.parse_args()
    idp = TestIdp(args.port, args.audience, args.lifetime)
    print("issuer %s" % idp.issuer, flush=True)
    idp.server.serve_forever()


if __name__ == "__main__":
    main()
