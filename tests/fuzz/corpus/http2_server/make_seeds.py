#!/usr/bin/python3
"""Writes the seeds of fuzz_http2_server: the frames real gRPC clients send
after the connection preface (which the target adds itself), made with
python3-h2. Each seed starts with one byte, the target's chunk size.

usage: make_seeds.py DIR
"""
import os
import struct
import sys

import h2.config
import h2.connection


def grpc(message):
    return b"\x00" + struct.pack(">I", len(message)) + message


def client():
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    c.initiate_connection()
    c.data_to_send()  # the preface and SETTINGS: the target sends its own
    return c


def headers(path, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "praefect"),
            ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "5S")] + list(extra)


def seeds():
    c = client()
    c.send_headers(1, headers("/gitaly.RefService/FindDefaultBranchName"))
    c.send_data(1, grpc(b"\x0a\x0f\x12\x07default\x1a\x04r.git"), end_stream=True)
    yield "unary", c.data_to_send()

    c = client()
    c.send_headers(1, headers("/gitaly.SSHService/SSHReceivePack", [("x-gitlab-correlation-id", "abc")]))
    for i in range(3):
        c.send_data(1, grpc(bytes([i]) * 100))
    c.end_stream(1)
    c.send_headers(3, headers("/gitaly.Fail/Fail"), end_stream=True)
    yield "streams", c.data_to_send()

    c = client()
    c.send_headers(1, headers("/gitaly.RefService/FindBranch", [("x-refuse", "1")]))
    c.send_data(1, grpc(b"x" * 200))
    c.reset_stream(1)
    yield "refused_then_reset", c.data_to_send()

    c = client()
    c.send_headers(1, headers("/grpc.health.v1.Health/Watch"))
    c.send_data(1, grpc(b""), end_stream=True)
    c.ping(b"12345678")
    c.increment_flow_control_window(1 << 20)
    yield "watch_ping_window", c.data_to_send()

    c = client()
    c.send_headers(1, headers("/x.Y/Oversized"))
    c.send_data(1, b"\x00\x10\x00\x00\x00" + b"z" * 100)
    yield "oversized_prefix", c.data_to_send()


def main():
    out = sys.argv[1]
    for name, data in seeds():
        for chunk in (1, 17, 63):
            with open(os.path.join(out, "%s_%d" % (name, chunk)), "wb") as f:
                f.write(bytes([chunk - 1]) + data)


if __name__ == "__main__":
    main()
