#!/usr/bin/python3
"""Writes the seeds of fuzz_yamux_session: frame sequences a hashicorp/yamux
peer sends (as the interop test sees them), and a few it must never send.
Each seed starts with the target's two bytes: the mode (role, owner
behaviour, backlog, window, an own stream first) and the read size.

usage: make_seeds.py DIR
"""
import os
import struct
import sys

DATA, UPDATE, PING, GOAWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 1, 2, 4, 8

SERVER, CLIENT = 0, 1
ACCEPT, CONSUME, BACKLOG1, BIG_WINDOW, OWN_STREAM = 2, 4, 8, 16, 32


def frame(kind, flags, stream, length, payload=b""):
    return struct.pack(">BBHII", 0, kind, flags, stream, length) + payload


def data(stream, payload, flags=0):
    return frame(DATA, flags, stream, len(payload), payload)


def seeds():
    # A node's streams toward praefect (the session is the client): opened
    # with the node's 16 MiB window, data, FIN; our stream 1 acknowledged.
    grow = 16 * 1024 * 1024 - 256 * 1024
    yield "node_streams", CLIENT | ACCEPT | CONSUME | OWN_STREAM, (
        frame(UPDATE, ACK, 1, grow) + frame(UPDATE, SYN, 2, grow) + data(2, b"vote" * 50) +
        frame(UPDATE, SYN, 4, grow) + data(4, b"x" * 3000, FIN) + data(1, b"response") +
        frame(UPDATE, FIN, 2, 0) + frame(PING, SYN, 0, 7) + frame(UPDATE, 0, 1, 131072))
    # praefect's side seen from a node (the session is the server).
    yield "client_streams", SERVER | ACCEPT | CONSUME, (
        frame(UPDATE, SYN, 1, 0) + data(1, b"\x00" * 5000) + frame(UPDATE, SYN, 3, 0) +
        data(3, b"abc", FIN) + frame(UPDATE, RST, 1, 0) + data(1, b"late") + frame(PING, ACK, 0, 0))
    # Nobody consumes: data within the window, then a frame beyond it (its
    # header is enough).
    yield "window_full", SERVER | ACCEPT, (
        frame(UPDATE, SYN, 1, 0) + data(1, b"w" * 1000) + frame(DATA, 0, 1, 262144))
    # Backlog 1, nothing accepted: the second and third opens are refused.
    yield "backlog", SERVER | BACKLOG1, (
        frame(UPDATE, SYN, 1, 0) + frame(UPDATE, SYN, 3, 0) + data(3, b"dropped") +
        frame(DATA, SYN, 5, 4, b"gone") + frame(UPDATE, FIN, 3, 0))
    # GoAway, then the sessions goes on; then one with an error code.
    yield "goaway", CLIENT | ACCEPT | OWN_STREAM | BIG_WINDOW, (
        frame(UPDATE, ACK, 1, 0) + frame(GOAWAY, 0, 0, 0) + frame(UPDATE, SYN, 2, 0) +
        data(1, b"after goaway", FIN) + frame(GOAWAY, 0, 0, 2))
    # Not yamux at all.
    yield "http2_preface", SERVER, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, mode, body in seeds():
        for read in (0, 1, 17):
            with open(os.path.join(out, "%s_%d" % (name, read)), "wb") as f:
                f.write(bytes([mode, read]) + body)


if __name__ == "__main__":
    main()
