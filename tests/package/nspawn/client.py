#!/usr/bin/python3
"""The gRPC client of tests/package/nspawn_test.sh, run inside the booted
container against the packaged praefect (127.0.0.1:2305, its socket unit).
Python grpcio with stubs generated from the packaged Gitaly protos: a client
that is not praefect's own code.

  client.py STUBS TOKEN_FILE exists REPO
      RepositoryExists, which praefect answers from its metadata without a
      node; prints true or false.
  client.py STUBS TOKEN_FILE create REPO
      CreateRepository through praefect.
  client.py STUBS TOKEN_FILE size REPO
      One RepositorySize call; prints the size.
  client.py STUBS TOKEN_FILE loop REPO REVISION OUT STOP
      On ONE channel, until the file STOP exists: RepositorySize (an
      accessor, routed to a replica) then WriteRef refs/heads/loop to
      REVISION (a mutator: primary, generation, replication jobs), about 50
      calls a second. Fail-fast calls (no wait_for_ready), as GitLab makes
      them: a refused connection fails the call at once instead of waiting,
      which is what a dropped listening socket looks like to a client. Each
      call has 60 s, time for a restart behind a socket that queues the
      connection. Writes a JSON summary to OUT: calls, failures (time,
      method, code, details) and each call's start and end.

The token is Gitaly's v2 token computed here from TOKEN_FILE's first line.
Exit status 0 once OUT is written, whatever the calls did: the shell test
judges the summary.
"""
import hashlib
import hmac
import json
import os
import sys
import time

STUBS, TOKEN_FILE, COMMAND = sys.argv[1:4]
ARGS = sys.argv[4:]
sys.path.insert(0, STUBS)

import grpc  # noqa: E402
import repository_service_pb2 as rs  # noqa: E402
import repository_service_pb2_grpc as rs_grpc  # noqa: E402
import shared_pb2  # noqa: E402

ADDRESS = "127.0.0.1:2305"
VIRTUAL_STORAGE = "default"


def auth():
    with open(TOKEN_FILE) as f:
        secret = f.readline().strip()
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode(), hashlib.sha256).hexdigest()
    return [("authorization", "Bearer v2.%s.%s" % (sig, ts))]


def repo(relative_path):
    return shared_pb2.Repository(storage_name=VIRTUAL_STORAGE, relative_path=relative_path)


def main():
    with grpc.insecure_channel(ADDRESS) as channel:
        stub = rs_grpc.RepositoryServiceStub(channel)
        if COMMAND == "exists":
            r = stub.RepositoryExists(rs.RepositoryExistsRequest(repository=repo(ARGS[0])), metadata=auth(),
                                      timeout=60)
            print("true" if r.exists else "false")
        elif COMMAND == "create":
            stub.CreateRepository(rs.CreateRepositoryRequest(repository=repo(ARGS[0])), metadata=auth(), timeout=60)
            print("created %s" % ARGS[0])
        elif COMMAND == "size":
            r = stub.RepositorySize(rs.RepositorySizeRequest(repository=repo(ARGS[0])), metadata=auth(), timeout=60)
            print("size %d" % r.size)
        elif COMMAND == "loop":
            loop(stub, *ARGS)
        else:
            sys.exit("unknown command %r" % COMMAND)


def loop(stub, relative_path, revision, out, stop):
    calls = []
    failures = []
    size_request = rs.RepositorySizeRequest(repository=repo(relative_path))
    write_request = rs.WriteRefRequest(repository=repo(relative_path), ref=b"refs/heads/loop",
                                       revision=revision.encode())
    methods = [("RepositorySize", stub.RepositorySize, size_request), ("WriteRef", stub.WriteRef, write_request)]
    i = 0
    while not os.path.exists(stop):
        name, method, request = methods[i % 2]
        i += 1
        start = time.time()
        try:
            method(request, metadata=auth(), timeout=60)
        except grpc.RpcError as e:
            failures.append({"time": start, "method": name, "code": e.code().name, "details": e.details()})
        calls.append([round(start, 3), round(time.time(), 3)])
        time.sleep(0.02)
    with open(out + ".tmp", "w") as f:
        json.dump({"calls": calls, "failures": failures}, f)
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
