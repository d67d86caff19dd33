"""A real SMTP server on 127.0.0.1 for fn-email's tests and benchmark (aiosmtpd).

    python3 smtp_server.py MODE DIR [USER PASSWORD]

Binds an ephemeral port, prints `PORT <n>` on stdout once it accepts connections, and exits
when its stdin closes (the test holding the pipe ended, however it ended).

Modes:
  store        accept everything; each message is written to DIR/msg-<n>.json as
               {"mail_from", "rcpt_tos", "data"} (written to a temporary name, then renamed)
  sink         accept everything, write nothing (benchmark)
  reject-rcpt  answer 550 to every RCPT TO
  reject-data  accept recipients, answer 550 to the message (after DATA)
  auth         like store, but AUTH (PLAIN/LOGIN, without TLS) with USER/PASSWORD is required
  starttls     like store, but STARTTLS is required before MAIL (certificate below)
  smtps        like store, over implicit TLS (certificate below)

The TLS modes make a throwaway CA and a certificate for DNS name `localhost` only (no IP
address), signed by it; the CA certificate is written to DIR/ca.pem for the client to trust.

Every mode appends one line to DIR/connections.log per accepted TCP connection, so a test can
assert that no connection was even attempted.
"""

import asyncio
import datetime
import itertools
import logging
import ssl
import warnings
import json
import os
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

MODE, DIR = sys.argv[1], sys.argv[2]
USER, PASSWORD = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
COUNTER = itertools.count(1)


def write_json(name, value):
    tmp = os.path.join(DIR, "." + name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, os.path.join(DIR, name))


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if MODE == "reject-rcpt":
            return "550 5.1.1 <%s>: recipient address rejected: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if MODE == "reject-data":
            return "550 5.7.1 message content rejected as spam"
        if MODE != "sink":
            n = next(COUNTER)
            write_json(
                "msg-%06d.json" % n,
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                },
            )
        return "250 2.0.0 OK queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    )
    # handled=False: aiosmtpd then answers 535 itself (handled=True would mean "already answered").
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class LoggingSMTP(SMTP):
    def connection_made(self, transport):
        with open(os.path.join(DIR, "connections.log"), "a") as f:
            f.write("connection\n")
        super().connection_made(transport)


# auth mode deliberately takes AUTH without TLS (127.0.0.1 only); aiosmtpd warns about it.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
logging.getLogger("mail.log").setLevel(logging.ERROR)


def make_tls_context():
    """A CA, a leaf certificate for `localhost` signed by it, and a server context with the leaf."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fn-email test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    with open(os.path.join(DIR, "ca.pem"), "wb") as f:
        f.write(pem(ca))
    with open(os.path.join(DIR, "leaf.pem"), "wb") as f:
        f.write(pem(leaf))
    with open(os.path.join(DIR, "leaf.key"), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(os.path.join(DIR, "leaf.pem"), os.path.join(DIR, "leaf.key"))
    return context


TLS = make_tls_context() if MODE in ("starttls", "smtps") else None


def factory():
    if MODE == "starttls":
        return LoggingSMTP(Handler(), tls_context=TLS, require_starttls=True)
    if MODE == "auth":
        return LoggingSMTP(
            Handler(),
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )
    return LoggingSMTP(Handler())


async def main():
    loop = asyncio.get_running_loop()
    ssl_context = TLS if MODE == "smtps" else None
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    stop = asyncio.Event()

    def wait_for_eof():
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    await stop.wait()
    server.close()


if __name__ == "__main__":
    if MODE not in ("store", "sink", "reject-rcpt", "reject-data", "auth", "starttls", "smtps"):
        sys.exit("unknown mode %r" % MODE)
    asyncio.run(main())
