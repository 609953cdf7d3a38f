#!/usr/bin/python3
"""Write the seed corpus of fuzz_ws_frames into corpus/ws_frames/.

Each seed is two setting bytes (see fuzz_ws_frames.c: read size and
max_message) followed by the server frames of RFC 6455 section 5.
Run it from any directory; it overwrites the seeds it writes.
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ws_frames")

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length=None):
    """Encode one frame; length overrides the payload length in the header."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack(">Q", n)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


EVENT = json.dumps({
    "type": "pzd",
    "customer": "12345",
    "recipient": "alice@corp.example",
    "messageId": "<CAF+x9=Q/abc@mail.example.net>",
    "threat": "malware",
    "ts": "2026-03-02T10:11:12Z",
}).encode()

# Setting bytes: whole stream per read, default 1 MiB limit.
WHOLE = b"\x00\x80"
# One byte per read, default limit.
BYTEWISE = b"\x01\x80"
# Seven bytes per read, 64-byte limit.
SMALL = b"\x07\x07"

SEEDS = {
    "text-one": WHOLE + frame(TEXT, EVENT),
    "text-bytewise": BYTEWISE + frame(TEXT, EVENT) + frame(TEXT, b"{}"),
    "text-two-then-close": WHOLE + frame(TEXT, EVENT) + frame(TEXT, EVENT) + frame(CLOSE, struct.pack(">H", 1000) + b"bye"),
    "fragmented": WHOLE + frame(TEXT, EVENT[:10], fin=False) + frame(CONT, EVENT[10:40], fin=False) + frame(CONT, EVENT[40:]),
    "fragmented-ping-between": SMALL + frame(TEXT, b"{\"a\":", fin=False) + frame(PING, b"hi") + frame(CONT, b"1}"),
    "fragment-split-utf8": WHOLE + frame(TEXT, "Grüße ".encode()[:3], fin=False) + frame(CONT, "Grüße ".encode()[3:]),
    "invalid-utf8": WHOLE + frame(TEXT, b"{\"x\":\"\xc3\x28\xff\"}") + frame(TEXT, b"{}"),
    "utf8-cut-at-end": WHOLE + frame(TEXT, "é".encode()[:1]),
    "overlong-utf8": WHOLE + frame(TEXT, b"\xc0\xaf\xe0\x80\xaf\xed\xa0\x80"),
    "binary": WHOLE + frame(BINARY, b"\x00\x01\x02") + frame(TEXT, b"{}"),
    "oversized-message": SMALL + frame(TEXT, EVENT) + frame(TEXT, b"{}"),
    "oversized-fragments": SMALL + frame(TEXT, b"a" * 40, fin=False) + frame(CONT, b"b" * 40),
    "ping-pong": WHOLE + frame(PING, b"12345678") + frame(PONG, b"12345678") + frame(PONG, b""),
    "close-empty": WHOLE + frame(CLOSE),
    "close-one-byte": WHOLE + frame(CLOSE, b"\x03"),
    "close-long-reason": WHOLE + frame(CLOSE, struct.pack(">H", 1011) + b"r" * 123),
    "control-too-long": WHOLE + frame(PING, b"p" * 126),
    "control-fragmented": WHOLE + frame(PING, b"p", fin=False),
    "masked": WHOLE + frame(TEXT, b"{}", mask=b"\x11\x22\x33\x44"),
    "reserved-bits": WHOLE + frame(TEXT, b"{}", rsv=4),
    "reserved-opcode": WHOLE + frame(0x3, b"{}"),
    "continuation-first": WHOLE + frame(CONT, b"{}"),
    "text-inside-fragmented": WHOLE + frame(TEXT, b"{", fin=False) + frame(TEXT, b"}"),
    "length-16": WHOLE + frame(TEXT, b"x" * 300),
    "length-64-huge": WHOLE + frame(TEXT, b"abc", length=1 << 62),
    "length-64-top-bit": WHOLE + frame(TEXT, b"abc", length=(1 << 63) + 5),
    "length-64-small-value": WHOLE + b"\x81\x7f" + struct.pack(">Q", 5) + b"hello",
    "cut-inside-fragmented": WHOLE + frame(TEXT, b"{\"a\":", fin=False) + frame(CONT, b"1", fin=False),
    "cut-inside-header": WHOLE + b"\x81\x7e\x01",
    "refuse-text": b"\x80\x80" + frame(TEXT, b"{}") + frame(TEXT, b"{}"),
    "empty-stream": WHOLE,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
