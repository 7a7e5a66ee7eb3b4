#!/usr/bin/python3
"""An independent client for praefect-storage-node: Python grpcio with stubs
generated now, from Debian's packaged Gitaly protos, by protoc and
grpc_python_plugin. Exercises unary, server-streaming and bidi methods; the
node's own C++ tests use its own stubs, so this checks the wire from the
outside.

usage: storage_node_client_test.py NODE_BINARY PROTO_DIR WORK_DIR
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

NODE, PROTO_DIR, WORK = sys.argv[1:4]


def generate_stubs(out):
    os.makedirs(out)
    protos = sorted(p for p in os.listdir(PROTO_DIR) if p.endswith(".proto"))
    subprocess.run(["protoc", "--proto_path=" + PROTO_DIR, "--proto_path=/usr/include",
                    "--python_out=" + out, "--grpc_out=" + out,
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + protos, check=True)
    sys.path.insert(0, out)


def git(*args, input=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=WORK, GIT_AUTHOR_NAME="E2E",
               GIT_AUTHOR_EMAIL="e2e@example.com", GIT_COMMITTER_NAME="E2E",
               GIT_COMMITTER_EMAIL="e2e@example.com")
    return subprocess.run(["git"] + list(args), input=input, env=env, check=True,
                          stdout=subprocess.PIPE).stdout


class NodeClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.root = tempfile.mkdtemp(prefix="e2e-node-", dir=WORK)
        generate_stubs(os.path.join(cls.root, "gen"))
        cls.storage = os.path.join(cls.root, "storage")
        config = os.path.join(cls.root, "node.toml")
        with open(config, "w") as f:
            f.write('listen_addr = "127.0.0.1:0"\n[[storage]]\nname = "default"\npath = "%s"\n' % cls.storage)
        cls.node = subprocess.Popen([NODE, "-config", config], stdout=subprocess.PIPE)
        line = cls.node.stdout.readline().decode()  # the node prints it once listening
        assert line.startswith("listening on tcp://"), line
        cls.channel = grpc.insecure_channel(line.strip()[len("listening on tcp://"):])
        grpc.channel_ready_future(cls.channel).result(timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.node.terminate()
        cls.node.wait(timeout=30)
        shutil.rmtree(cls.root)

    def repo(self, rel):
        import shared_pb2
        return shared_pb2.Repository(storage_name="default", relative_path=rel)

    def test_unary_create_exists_remove(self):
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        repo = self.repo("py/unary.git")
        self.assertFalse(stub.RepositoryExists(rs.RepositoryExistsRequest(repository=repo), timeout=30).exists)
        stub.CreateRepository(rs.CreateRepositoryRequest(repository=repo), timeout=30)
        self.assertTrue(stub.RepositoryExists(rs.RepositoryExistsRequest(repository=repo), timeout=30).exists)
        # RemoveRepository is newer than the packaged protos: its request
        # {Repository repository = 1} has RepositoryExistsRequest's layout.
        remove = self.channel.unary_unary("/gitaly.RepositoryService/RemoveRepository",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=lambda b: b)
        self.assertEqual(remove(rs.RepositoryExistsRequest(repository=repo), timeout=30), b"")
        self.assertFalse(stub.RepositoryExists(rs.RepositoryExistsRequest(repository=repo), timeout=30).exists)

    def test_streaming_branches_blob_and_checksum(self):
        import blob_pb2, blob_pb2_grpc, ref_pb2, ref_pb2_grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        repo = self.repo("py/stream.git")
        rs_grpc.RepositoryServiceStub(self.channel).CreateRepository(
            rs.CreateRepositoryRequest(repository=repo), timeout=30)
        path = os.path.join(self.storage, "py/stream.git")
        blob = os.urandom(300 * 1024)  # three GetBlob messages
        oid = git("--git-dir=" + path, "hash-object", "-w", "--stdin", input=blob).decode().strip()
        tree = git("--git-dir=" + path, "mktree", input=b"100644 blob %s\tdata.bin\n" % oid.encode()).strip()
        commit = git("--git-dir=" + path, "commit-tree", "-m", "e2e", tree.decode()).decode().strip()
        want = ["refs/heads/b%02d" % i for i in range(30)]
        git("--git-dir=" + path, "update-ref", "--stdin",
            input="".join("create %s %s\n" % (r, commit) for r in want).encode())

        refs = ref_pb2_grpc.RefServiceStub(self.channel)
        names = []
        messages = 0
        for msg in refs.FindAllBranchNames(ref_pb2.FindAllBranchNamesRequest(repository=repo), timeout=30):
            messages += 1
            names.extend(n.decode() for n in msg.names)
        self.assertEqual(names, want)
        self.assertGreater(messages, 1)

        chunks = list(blob_pb2_grpc.BlobServiceStub(self.channel).GetBlob(
            blob_pb2.GetBlobRequest(repository=repo, oid=oid, limit=-1), timeout=30))
        self.assertEqual(chunks[0].size, len(blob))
        self.assertEqual(chunks[0].oid, oid)
        self.assertEqual(b"".join(c.data for c in chunks), blob)
        self.assertGreaterEqual(len(chunks), 3)

        # Gitaly's checksum, computed here from git's own listing.
        lines = git("--git-dir=" + path, "show-ref", "--head").decode().splitlines()
        total = 0
        for line in lines:
            if "HEAD" in line or "refs/heads/" in line or "refs/tags/" in line:
                total ^= int(hashlib.sha1(line.encode()).hexdigest(), 16)
        expected = "%x" % total
        expected = ("0" + expected) if len(expected) % 2 else expected
        got = rs_grpc.RepositoryServiceStub(self.channel).CalculateChecksum(
            rs.CalculateChecksumRequest(repository=repo), timeout=30).checksum
        self.assertEqual(got, expected)

    def smarthttp_repo(self, rel):
        """A repository with two commits on main; returns (repo, path, tip)."""
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        repo = self.repo(rel)
        rs_grpc.RepositoryServiceStub(self.channel).CreateRepository(
            rs.CreateRepositoryRequest(repository=repo), timeout=30)
        path = os.path.join(self.storage, rel)
        blob = git("--git-dir=" + path, "hash-object", "-w", "--stdin", input=os.urandom(200 * 1024)).strip()
        tree = git("--git-dir=" + path, "mktree", input=b"100644 blob %s\tnoise.bin\n" % blob).strip()
        first = git("--git-dir=" + path, "commit-tree", "-m", "one", tree.decode()).decode().strip()
        tip = git("--git-dir=" + path, "commit-tree", "-p", first, "-m", "two", tree.decode()).decode().strip()
        git("--git-dir=" + path, "update-ref", "refs/heads/main", tip)
        git("--git-dir=" + path, "symbolic-ref", "HEAD", "refs/heads/main")
        return repo, path, tip

    def test_smarthttp_info_refs_server_streaming(self):
        import grpc
        import smarthttp_pb2, smarthttp_pb2_grpc
        repo, path, tip = self.smarthttp_repo("py/info-refs.git")
        stub = smarthttp_pb2_grpc.SmartHTTPServiceStub(self.channel)
        messages = [m.data for m in stub.InfoRefsUploadPack(
            smarthttp_pb2.InfoRefsRequest(repository=repo), timeout=30)]
        self.assertEqual(messages[:2], [b"001e# service=git-upload-pack\n", b"0000"])
        advertised = b"".join(messages)
        for line in git("--git-dir=" + path, "for-each-ref", "--format=%(objectname) %(refname)").splitlines():
            self.assertIn(line, advertised)
        self.assertIn(tip.encode() + b" HEAD\x00", advertised)
        self.assertTrue(advertised.endswith(b"0000"))
        with self.assertRaises(grpc.RpcError) as err:
            list(stub.InfoRefsUploadPack(smarthttp_pb2.InfoRefsRequest(
                repository=self.repo("py/absent.git")), timeout=30))
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_smarthttp_post_upload_pack_bidi(self):
        import grpc
        import smarthttp_pb2, smarthttp_pb2_grpc
        repo, path, tip = self.smarthttp_repo("py/upload-pack.git")
        stub = smarthttp_pb2_grpc.SmartHTTPServiceStub(self.channel)

        def pkt(data):
            return b"%04x%s" % (len(data) + 4, data)

        negotiation = pkt(b"want %s\n" % tip.encode()) + b"0000" + pkt(b"done\n")

        def requests(data):
            yield smarthttp_pb2.PostUploadPackRequest(repository=repo)
            for i in range(0, len(data), 10):
                yield smarthttp_pb2.PostUploadPackRequest(data=data[i:i + 10])

        out = b"".join(m.data for m in stub.PostUploadPack(requests(negotiation), timeout=30))
        self.assertTrue(out.startswith(b"0008NAK\nPACK"), out[:16])
        scratch = os.path.join(self.root, "py-fetched.git")
        git("init", "--bare", "--quiet", scratch)
        git("--git-dir=" + scratch, "index-pack", "--stdin", input=out[8:])
        self.assertEqual(git("--git-dir=" + scratch, "rev-list", "--objects", tip),
                         git("--git-dir=" + path, "rev-list", "--objects", tip))

        unknown = pkt(b"want %s\n" % (b"1" * 40)) + b"0000" + pkt(b"done\n")
        with self.assertRaises(grpc.RpcError) as err:
            list(stub.PostUploadPack(requests(unknown), timeout=30))
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("not our ref", err.exception.details())

    def test_errors_have_grpc_codes(self):
        import grpc
        import repository_service_pb2 as rs
        import repository_service_pb2_grpc as rs_grpc
        stub = rs_grpc.RepositoryServiceStub(self.channel)
        with self.assertRaises(grpc.RpcError) as err:
            stub.RepositoryExists(rs.RepositoryExistsRequest(
                repository=self.repo("../x.git")), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as err:
            stub.Fsck(rs.FsckRequest(repository=self.repo("x.git")), timeout=30)
        self.assertEqual(err.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
