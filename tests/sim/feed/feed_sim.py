#!/usr/bin/python3
"""Simulator of the Retarus Forensic SIEM WebSocket feed, for end-to-end tests.

It serves wss:// on 127.0.0.1 with a test certificate and checks the
"Authorization: Bearer" header and the channel query parameter like the real
service, which rejects a bad upgrade with a plain HTTP 400 or 401. It sends
events, one JSON object per text message. Events come from a JSONL file and/or are
generated with distinct mimeIds. Like a channel without acknowledgement, each
event is sent once: an event written to a connection is gone from the queue.

Misbehaviour is scripted per connection with a JSON scenario:
    {"connections": [PLAN, PLAN, ...], "default": PLAN}
where connection n (counting from 0) follows connections[n], later ones the
default, and a PLAN is {"refuse": STATUS} or {"steps": [STEP, ...]}:
    ["send", N | "all"]        send N queued events (at --rate per second, 0 = full speed)
    ["drop"]                   close TCP without a close frame
    ["close", CODE, REASON]    send a close frame and wait for the answer
    ["no_pong"]                stop answering PINGs
    ["stall"]                  stop reading and writing (no PONGs, no data)
    ["fragmented", PARTS]      send the next event as PARTS frames, a PING in between
    ["fragment_then_drop"]     send half of the next event as a first fragment, then drop
    ["big", BYTES]             send one text message of BYTES bytes
    ["binary"]                 send one binary message
    ["bad_utf8"]               send one text message that is not valid UTF-8
    ["non_json", TEXT]         send TEXT as a text message
    ["sleep", SECONDS]
    ["hold"]                   keep the connection open until the client closes it
The default plan is [["send", "all"], ["hold"]].

Everything is recorded, one JSON object per line with a wall-clock "t", in
--record: handshakes (with the HTTP status), events sent (with their text),
special messages (with their bytes in hex), PINGs received and closes.
Prints "READY <port>" on stdout once listening.
Run it with Debian's /usr/bin/python3 (python3-websockets 10.4, legacy API).
"""
import argparse
import asyncio
import collections
import http
import json
import ssl
import sys
import time
import urllib.parse

import websockets
from websockets.legacy.server import WebSocketServerProtocol
from websockets.frames import OP_BINARY, OP_CONT, OP_PING, OP_TEXT

FEED_PATH = "/email/siem/v1/websocket"
DEFAULT_PLAN = {"steps": [["send", "all"], ["hold"]]}
# Maximum time a stalled connection is kept before the simulator drops it.
STALL_SECONDS = 3600


class Recorder:
    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, kind, **fields):
        if not self.file:
            return
        fields.update(t=time.time(), kind=kind)
        self.file.write(json.dumps(fields) + "\n")
        self.file.flush()


class Feed:
    """The shared state: the event queue, the scenario and the connection count."""

    def __init__(self, args):
        self.token = open(args.token_file, encoding="utf-8").read().strip()
        self.channel = args.channel
        self.rate = args.rate
        self.events = collections.deque()
        if args.events:
            with open(args.events, encoding="utf-8") as f:
                self.events.extend(line.rstrip("\n") for line in f if line.strip())
        for i in range(args.generate):
            self.events.append(generated_event(i))
        self.scenario = {}
        if args.scenario:
            with open(args.scenario, encoding="utf-8") as f:
                self.scenario = json.load(f)
        self.connections = 0
        self.record = Recorder(args.record)

    def plan_for(self, index):
        plans = self.scenario.get("connections", [])
        if index < len(plans):
            return plans[index]
        return self.scenario.get("default", DEFAULT_PLAN)


def generated_event(i):
    return json.dumps({
        "version": "1.0", "host": "events.retarus.com", "customer": "CUST0042",
        "class": "THREAT", "type": "PZD", "direction": "INBOUND", "status": "DETECTED",
        "ts": "2026-11-30 08:14:03 +0100", "sourceIp": "192.0.2.10",
        "sender": "billing@invoices.example.net", "recipient": "user%d@contoso.example" % (i % 50),
        "mimeId": "<gen-%06d@sim.example>" % i, "rmxId": "20261130-081402-Gen%06d-0@mailin07" % i,
        "metaData": {"threatType": "URL", "uniformResourceLocator": "https://phish.example/%d" % i,
                     "details": str(100000 + i)},
    }, separators=(",", ":"))


def mime_id(text):
    try:
        return json.loads(text).get("mimeId")
    except (ValueError, AttributeError):
        return None


class SimProtocol(WebSocketServerProtocol):
    feed = None  # set in main()

    async def process_request(self, path, headers):
        feed = self.feed
        self.conn = feed.connections
        feed.connections += 1
        self.plan = feed.plan_for(self.conn)
        self.answer_pings = True
        status = self.check_request(path, headers)
        feed.record.write("handshake", conn=self.conn, path=path, status=status)
        if status != 101:
            return (http.HTTPStatus(status), [("Content-Type", "text/plain")], b"rejected by the feed simulator\n")
        return None

    def check_request(self, path, headers):
        parts = urllib.parse.urlsplit(path)
        channel = urllib.parse.parse_qs(parts.query).get("channel", ["default"])
        if headers.get("Authorization") != "Bearer " + self.feed.token:
            return 401
        if parts.path != FEED_PATH or channel != [self.feed.channel]:
            return 400
        if "refuse" in self.plan:
            return int(self.plan["refuse"])
        return 101

    async def pong(self, data=b""):
        self.feed.record.write("ping", conn=self.conn)
        if self.answer_pings:
            await super().pong(data)


async def send_events(ws, feed, count):
    sent = 0
    while feed.events and (count == "all" or sent < count):
        text = feed.events.popleft()
        try:
            await ws.send(text)
        except websockets.ConnectionClosed:
            feed.events.appendleft(text)
            raise
        feed.record.write("sent", conn=ws.conn, mimeId=mime_id(text), data=text)
        sent += 1
        if feed.rate > 0:
            await asyncio.sleep(1.0 / feed.rate)


async def send_special(ws, what, opcode, payload):
    await ws.write_frame(True, opcode, payload)
    ws.feed.record.write("special", conn=ws.conn, what=what, size=len(payload), hex=payload[:4096].hex())


async def send_fragmented(ws, feed, parts):
    if not feed.events:
        return
    text = feed.events.popleft()
    data = text.encode()
    step = max(1, -(-len(data) // parts))
    pieces = [data[i:i + step] for i in range(0, len(data), step)]
    for i, piece in enumerate(pieces):
        await ws.write_frame(i == len(pieces) - 1, OP_TEXT if i == 0 else OP_CONT, piece)
        if i == 0:
            await ws.write_frame(True, OP_PING, b"between-fragments")
    feed.record.write("sent", conn=ws.conn, mimeId=mime_id(text), data=text, fragments=len(pieces))


async def fragment_then_drop(ws, feed):
    text = feed.events.popleft()
    data = text.encode()
    await ws.write_frame(False, OP_TEXT, data[:len(data) // 2])
    feed.record.write("special", conn=ws.conn, what="incomplete", size=len(data),
                      hex=data[:len(data) // 2].hex(), mimeId=mime_id(text))
    ws.transport.close()


async def run_step(ws, feed, step):
    name, args = step[0], step[1:]
    if name == "send":
        await send_events(ws, feed, args[0] if args else "all")
    elif name == "drop":
        ws.transport.close()
        return False
    elif name == "close":
        await ws.close(int(args[0]), args[1] if len(args) > 1 else "")
        return False
    elif name == "no_pong":
        ws.answer_pings = False
    elif name == "stall":
        ws.answer_pings = False
        ws.transport.pause_reading()
        await asyncio.sleep(STALL_SECONDS)
        ws.transport.abort()
        return False
    elif name == "fragmented":
        await send_fragmented(ws, feed, int(args[0]))
    elif name == "fragment_then_drop":
        await fragment_then_drop(ws, feed)
        return False
    elif name == "big":
        size = int(args[0])
        body = b'{"big":"' + b"x" * max(0, size - 10) + b'"}'
        await send_special(ws, "big", OP_TEXT, body)
    elif name == "binary":
        await send_special(ws, "binary", OP_BINARY, b"\x00\x01\x02binary\xff")
    elif name == "bad_utf8":
        await send_special(ws, "bad_utf8", OP_TEXT, b'{"bad":"\xc3\x28 and \xed\xa0\x80"}')
    elif name == "non_json":
        await send_special(ws, "non_json", OP_TEXT, (args[0] if args else "not json").encode())
    elif name == "sleep":
        await asyncio.sleep(float(args[0]))
    elif name == "hold":
        await ws.wait_closed()
        return False
    else:
        raise ValueError("unknown scenario step %r" % (name,))
    return True


async def handler(ws, path):
    feed = ws.feed
    try:
        for step in ws.plan.get("steps", DEFAULT_PLAN["steps"]):
            if not await run_step(ws, feed, step):
                break
    except websockets.ConnectionClosed:
        pass
    feed.record.write("closed", conn=ws.conn, code=ws.close_code, reason=ws.close_reason)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    parser.add_argument("--token-file", required=True, help="file with the expected bearer token")
    parser.add_argument("--channel", default="default", help="expected channel name")
    parser.add_argument("--events", help="JSONL file of events to send")
    parser.add_argument("--generate", type=int, default=0, help="number of generated events to add")
    parser.add_argument("--rate", type=float, default=0, help="events per second (0: full speed)")
    parser.add_argument("--scenario", help="JSON scenario file (see the module docstring)")
    parser.add_argument("--record", help="JSONL file recording everything sent and received")
    args = parser.parse_args()

    SimProtocol.feed = Feed(args)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = await websockets.serve(
        handler, "127.0.0.1", args.port, ssl=context, create_protocol=SimProtocol,
        ping_interval=None, max_size=None, compression=None)
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
