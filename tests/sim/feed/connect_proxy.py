#!/usr/bin/python3
"""HTTP CONNECT proxy for end-to-end tests, with Basic or NTLMv2 authentication.

Listens on 127.0.0.1 and tunnels only to loopback targets (127.0.0.1,
localhost). With --auth basic it expects "Proxy-Authorization: Basic"; with
--auth ntlm it runs the NTLM handshake on the connection (NEGOTIATE, then a
CHALLENGE in a 407, then AUTHENTICATE) and verifies the NTLMv2 response
against the password, as a Windows proxy would. A failed check gets 407 and
the connection stays open for the next try, as curl expects.

NTLM needs MD4, which OpenSSL 3 only has in its legacy provider: run with
OPENSSL_CONF pointing at openssl-legacy.cnf from this folder.
Records one JSON line per request in --record; prints "READY <port>".
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import time

LOOPBACK = ("127.0.0.1", "localhost")
# Longest request header block read from a client.
MAX_HEADER = 16384
NTLMSSP = b"NTLMSSP\0"


class Ntlm:
    """The server side of NTLMv2 for one user (MS-NLMP sections 2.2.1 and 3.3.2)."""

    def __init__(self, user, password, domain):
        self.user, self.password, self.domain = user, password, domain

    def challenge_message(self, challenge):
        target = self.domain.encode("utf-16-le")
        # AV pair MsvAvNbDomainName, then MsvAvEOL.
        info = struct.pack("<HH", 2, len(target)) + target + struct.pack("<HH", 0, 0)
        flags = 0x00000001 | 0x00000200 | 0x00080000 | 0x00800000 | 0x20000000 | 0x02000000
        offset = 56
        return (NTLMSSP + struct.pack("<I", 2)
                + struct.pack("<HHI", len(target), len(target), offset)
                + struct.pack("<I", flags) + challenge + b"\0" * 8
                + struct.pack("<HHI", len(info), len(info), offset + len(target))
                + b"\x06\x01\xb1\x1d\0\0\0\x0f" + target + info)

    def verify(self, message, challenge):
        def field(offset):
            length, _, start = struct.unpack_from("<HHI", message, offset)
            return message[start:start + length]

        nt_response = field(20)
        domain = field(28).decode("utf-16-le")
        user = field(36).decode("utf-16-le")
        if user.lower() != self.user.lower() or len(nt_response) < 24:
            return False
        nt_hash = hashlib.new("md4", self.password.encode("utf-16-le")).digest()
        v2_hash = hmac.new(nt_hash, (user.upper() + domain).encode("utf-16-le"), "md5").digest()
        proof = hmac.new(v2_hash, challenge + nt_response[16:], "md5").digest()
        return hmac.compare_digest(proof, nt_response[:16])


class Proxy:
    def __init__(self, args):
        self.auth = args.auth
        self.user, self.password = args.user, args.password
        self.ntlm = Ntlm(args.user, args.password, args.domain)
        self.record = open(args.record, "a", encoding="utf-8") if args.record else None

    def log(self, **fields):
        if self.record:
            fields["t"] = time.time()
            self.record.write(json.dumps(fields) + "\n")
            self.record.flush()

    def check(self, header, state):
        """Returns (ok, extra 407 header) for one Proxy-Authorization value."""
        if self.auth == "none":
            return True, None
        if self.auth == "basic":
            expected = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            ok = header[:6].lower() == "basic " and hmac.compare_digest(header[6:].strip(), expected)
            return ok, 'Basic realm="clawback test proxy"'
        if header[:5].upper() != "NTLM ":
            return False, "NTLM"
        try:
            message = base64.b64decode(header[5:].strip())
        except ValueError:
            return False, "NTLM"
        if message[:8] != NTLMSSP or len(message) < 12:
            return False, "NTLM"
        kind = struct.unpack_from("<I", message, 8)[0]
        if kind == 1:
            state["challenge"] = os.urandom(8)
            challenge = self.ntlm.challenge_message(state["challenge"])
            return False, "NTLM " + base64.b64encode(challenge).decode()
        if kind == 3 and "challenge" in state:
            try:
                return self.ntlm.verify(message, state.pop("challenge")), "NTLM"
            except (struct.error, UnicodeDecodeError):
                return False, "NTLM"
        return False, "NTLM"

    async def handle(self, reader, writer):
        state = {}
        try:
            target = await self.authenticate(reader, writer, state)
            if target:
                await self.tunnel(reader, writer, target)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def authenticate(self, reader, writer, state):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if len(parts) != 3 or parts[0] != "CONNECT":
                self.log(kind="bad_request", line=lines[0])
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return None
            ok, challenge = self.check(headers.get("proxy-authorization", ""), state)
            if ok:
                return parts[1]
            self.log(kind="407", target=parts[1], scheme=headers.get("proxy-authorization", "")[:5])
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: "
                         + challenge.encode() + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async def tunnel(self, reader, writer, target):
        host, _, port = target.rpartition(":")
        if host not in LOOPBACK:
            self.log(kind="forbidden", target=target)
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self.log(kind="connect", target=target, auth=self.auth)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--auth", choices=("none", "basic", "ntlm"), default="basic")
    parser.add_argument("--user", default="proxyuser")
    parser.add_argument("--password", default="proxy-Passw0rd")
    parser.add_argument("--domain", default="CORP", help="NTLM domain sent in the challenge")
    parser.add_argument("--record", help="JSONL file with one line per request")
    args = parser.parse_args()
    if args.auth == "ntlm":
        hashlib.new("md4")  # fail early when the legacy provider is missing
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port, limit=MAX_HEADER)
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
