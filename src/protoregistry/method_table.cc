// The project-owned part of the method registry: what the packaged Gitaly
// protos (golang-gitaly-proto-dev 1.37.0, 2019) get wrong for a router, or
// leave ambiguous, and the Gitaly methods that came after them. Every entry
// carries a comment; overrides carry their reason in the data as well, so
// that `praefect` can print it. Sources: the op_type options of newer Gitaly
// protos (proto/*.proto in gitlab-org/gitaly, v13 to v15).
//
// Adding a method here makes praefect route it without any configuration.
// Operators can add more with [[registry.method]] (see praefect.toml(5)).

#include "protoregistry/method_table.h"

namespace praefect::protoregistry {
namespace {

constexpr Operation kAccessor = Operation::kAccessor;
constexpr Operation kMutator = Operation::kMutator;
constexpr Operation kMaintenance = Operation::kMaintenance;
constexpr Scope kRepo = Scope::kRepository;
constexpr Scope kStorage = Scope::kStorage;
constexpr Scope kServer = Scope::kServer;
constexpr Shape kUnary = Shape::kUnary;
constexpr Shape kClientStream = Shape::kClientStream;
constexpr Shape kServerStream = Shape::kServerStream;
constexpr Shape kBidi = Shape::kBidiStream;

// Entries name only the fields they set; the rest keep their defaults. GCC 12
// warns about that even for designated initializers, where it is the point.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
constexpr TableEntry kTable[] = {
    // ---- Overrides of packaged methods --------------------------------------

    // Read-only, but packaged as MUTATOR: every size query would bump the
    // generation and queue replication. ACCESSOR in newer Gitaly.
    {.name = "/gitaly.RepositoryService/RepositorySize", .operation = kAccessor, .scope = kRepo, .shape = kUnary,
     .target_repository = "1",
     .override_reason = "read-only; packaged as MUTATOR, ACCESSOR in newer Gitaly"},
    // Streams an archive of one commit; packaged as MUTATOR. ACCESSOR since Gitaly 13.
    {.name = "/gitaly.RepositoryService/GetArchive", .operation = kAccessor, .scope = kRepo, .shape = kServerStream,
     .target_repository = "1",
     .override_reason = "read-only; packaged as MUTATOR, ACCESSOR in newer Gitaly"},
    // Runs git fsck and reports; writes nothing. ACCESSOR in newer Gitaly.
    {.name = "/gitaly.RepositoryService/Fsck", .operation = kAccessor, .scope = kRepo, .shape = kUnary,
     .target_repository = "1",
     .override_reason = "read-only; packaged as MUTATOR, ACCESSOR in newer Gitaly"},
    // Packaged as MUTATOR with SERVER scope although the request names one
    // repository (field 1) and only reads it: as SERVER scope it could be sent
    // to a node that does not hold the repository.
    {.name = "/gitaly.RepositoryService/CreateBundle", .operation = kAccessor, .scope = kRepo, .shape = kServerStream,
     .target_repository = "1",
     .override_reason = "packaged as MUTATOR/SERVER but reads the repository in field 1; ACCESSOR in newer Gitaly"},
    // git upload-archive reads. ACCESSOR in newer Gitaly.
    {.name = "/gitaly.SSHService/SSHUploadArchive", .operation = kAccessor, .scope = kRepo, .shape = kBidi,
     .target_repository = "1",
     .override_reason = "read-only; packaged as MUTATOR, ACCESSOR in newer Gitaly"},
    // Only advertises refs before a push; the push itself (PostReceivePack) is
    // the mutator. Served from an up-to-date replica, it shows the same refs
    // as the primary. ACCESSOR in newer Gitaly.
    {.name = "/gitaly.SmartHTTPService/InfoRefsReceivePack", .operation = kAccessor, .scope = kRepo,
     .shape = kServerStream, .target_repository = "1",
     .override_reason = "ref advertisement only; packaged as MUTATOR, ACCESSOR in newer Gitaly"},
    // Housekeeping: packaged as MUTATOR, MAINTENANCE in newer Gitaly. As
    // maintenance it runs on every healthy replica and bumps no generation.
    {.name = "/gitaly.RepositoryService/RepackIncremental", .operation = kMaintenance, .scope = kRepo,
     .shape = kUnary, .target_repository = "1",
     .override_reason = "housekeeping; packaged as MUTATOR, MAINTENANCE in newer Gitaly"},
    // Housekeeping, as RepackIncremental.
    {.name = "/gitaly.RepositoryService/RepackFull", .operation = kMaintenance, .scope = kRepo, .shape = kUnary,
     .target_repository = "1",
     .override_reason = "housekeeping; packaged as MUTATOR, MAINTENANCE in newer Gitaly"},
    // Housekeeping, as RepackIncremental.
    {.name = "/gitaly.RepositoryService/GarbageCollect", .operation = kMaintenance, .scope = kRepo,
     .shape = kUnary, .target_repository = "1",
     .override_reason = "housekeeping; packaged as MUTATOR, MAINTENANCE in newer Gitaly"},
    // Removes stale lock and temporary files; housekeeping.
    {.name = "/gitaly.RepositoryService/Cleanup", .operation = kMaintenance, .scope = kRepo, .shape = kUnary,
     .target_repository = "1",
     .override_reason = "housekeeping; packaged as MUTATOR, MAINTENANCE in newer Gitaly"},
    // git pack-refs; housekeeping.
    {.name = "/gitaly.RefService/PackRefs", .operation = kMaintenance, .scope = kRepo, .shape = kUnary,
     .target_repository = "1",
     .override_reason = "housekeeping; packaged as MUTATOR, MAINTENANCE in newer Gitaly"},
    // The member repository (field 2) is the one written (its alternates
    // file); packaged names the pool (1.1). Newer Gitaly marks repository as
    // target and object_pool as additional repository.
    {.name = "/gitaly.ObjectPoolService/LinkRepositoryToObjectPool", .operation = kMutator, .scope = kRepo,
     .shape = kUnary, .target_repository = "2", .additional_repository = "1.1",
     .override_reason = "the member repository (2) is written, not the pool (1.1); as in newer Gitaly"},
    // The pool (2.1) is fetched into; packaged names the origin (1) as target.
    // Newer Gitaly: object_pool target, origin additional.
    {.name = "/gitaly.ObjectPoolService/FetchIntoObjectPool", .operation = kMutator, .scope = kRepo,
     .shape = kUnary, .target_repository = "2.1", .additional_repository = "1",
     .override_reason = "the pool (2.1) is fetched into, not the origin (1); as in newer Gitaly"},
    // Lists directories of a storage; packaged as MUTATOR/SERVER, which would
    // make it a storage-wide write broadcast to every node.
    {.name = "/gitaly.StorageService/ListDirectories", .operation = kAccessor, .scope = kStorage,
     .shape = kServerStream, .storage = "1",
     .override_reason = "read-only listing of the storage in field 1; packaged as MUTATOR/SERVER"},
    // Three repositories: repository (1), pool.repository (2.1) and
    // source_repository (3). The pool must sit on the same storage for the
    // alternates link, so it is the additional repository; the source is
    // fetched like FetchInternalRemote does. Removed from later Gitaly.
    {.name = "/gitaly.RepositoryService/CloneFromPoolInternal", .operation = kMutator, .scope = kRepo,
     .shape = kUnary, .target_repository = "1", .additional_repository = "2.1",
     .override_reason = "ambiguous additional repository (2.1 pool, 3 source): the pool must be co-located"},
    // Three repositories: source_repository (1, the packaged target),
    // target_repository (2), object_pool.repository (3.1). Keeps the packaged
    // target; names target_repository as additional. Removed from Gitaly 12.
    {.name = "/gitaly.RepositoryService/PreFetch", .operation = kMutator, .scope = kRepo, .shape = kUnary,
     .target_repository = "1", .additional_repository = "2",
     .override_reason = "ambiguous additional repository (2 target_repository, 3.1 pool): packaged target kept"},

    // ---- Methods newer than the packaged protos -----------------------------

    // Praefect asks a node to copy a repository from another (source, field
    // 2, reached through gitaly-servers metadata). Unary in Gitaly.
    {.name = "/gitaly.RepositoryService/ReplicateRepository", .operation = kMutator, .scope = kRepo,
     .shape = kUnary, .target_repository = "1", .additional_repository = "2"},
    // Deletes a repository; praefect intercepts it to delete every replica
    // and the metadata.
    {.name = "/gitaly.RepositoryService/RemoveRepository", .operation = kMutator, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Moves a repository to relative_path (field 2, a string).
    {.name = "/gitaly.RepositoryService/RenameRepository", .operation = kMutator, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Heuristic housekeeping, successor of repack/gc.
    {.name = "/gitaly.RepositoryService/OptimizeRepository", .operation = kMaintenance, .scope = kRepo,
     .shape = kUnary, .target_repository = "1"},
    // Prunes unreachable loose objects after OptimizeRepository.
    {.name = "/gitaly.RepositoryService/PruneUnreachableObjects", .operation = kMaintenance, .scope = kRepo,
     .shape = kUnary, .target_repository = "1"},
    // Deprecated housekeeping still sent by older GitLab.
    {.name = "/gitaly.RepositoryService/MidxRepack", .operation = kMaintenance, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Deprecated housekeeping still sent by older GitLab.
    {.name = "/gitaly.RepositoryService/WriteCommitGraph", .operation = kMaintenance, .scope = kRepo,
     .shape = kUnary, .target_repository = "1"},
    // Streams the repository's gitconfig.
    {.name = "/gitaly.RepositoryService/GetConfig", .operation = kAccessor, .scope = kRepo, .shape = kServerStream,
     .target_repository = "1"},
    // Fetches refs from a streamed bundle into the repository.
    {.name = "/gitaly.RepositoryService/FetchBundle", .operation = kMutator, .scope = kRepo,
     .shape = kClientStream, .target_repository = "1"},
    // Bundles the refs matching streamed patterns (backups).
    {.name = "/gitaly.RepositoryService/CreateBundleFromRefList", .operation = kAccessor, .scope = kRepo,
     .shape = kBidi, .target_repository = "1"},
    // Writes gitlab.fullpath into the gitconfig.
    {.name = "/gitaly.RepositoryService/SetFullPath", .operation = kMutator, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Reads gitlab.fullpath.
    {.name = "/gitaly.RepositoryService/FullPath", .operation = kAccessor, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // The object pool a repository is linked to.
    {.name = "/gitaly.ObjectPoolService/GetObjectPool", .operation = kAccessor, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Ref listing that replaces FindAllBranchNames/FindAllTagNames.
    {.name = "/gitaly.RefService/ListRefs", .operation = kAccessor, .scope = kRepo, .shape = kServerStream,
     .target_repository = "1"},
    // One tag by name.
    {.name = "/gitaly.RefService/FindTag", .operation = kAccessor, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Refs pointing at an object ID.
    {.name = "/gitaly.RefService/FindRefsByOID", .operation = kAccessor, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Signatures of annotated tags.
    {.name = "/gitaly.RefService/GetTagSignatures", .operation = kAccessor, .scope = kRepo,
     .shape = kServerStream, .target_repository = "1"},
    // Commit graph walk; replaces FindAllCommits/FindCommits.
    {.name = "/gitaly.CommitService/ListCommits", .operation = kAccessor, .scope = kRepo, .shape = kServerStream,
     .target_repository = "1"},
    // Every commit object, reachable or not.
    {.name = "/gitaly.CommitService/ListAllCommits", .operation = kAccessor, .scope = kRepo,
     .shape = kServerStream, .target_repository = "1"},
    // Which of the streamed revisions exist (push checks).
    {.name = "/gitaly.CommitService/CheckObjectsExist", .operation = kAccessor, .scope = kRepo, .shape = kBidi,
     .target_repository = "1"},
    // Blobs reachable from revisions.
    {.name = "/gitaly.BlobService/ListBlobs", .operation = kAccessor, .scope = kRepo, .shape = kServerStream,
     .target_repository = "1"},
    // Every blob object.
    {.name = "/gitaly.BlobService/ListAllBlobs", .operation = kAccessor, .scope = kRepo, .shape = kServerStream,
     .target_repository = "1"},
    // LFS pointers reachable from revisions.
    {.name = "/gitaly.BlobService/ListLFSPointers", .operation = kAccessor, .scope = kRepo,
     .shape = kServerStream, .target_repository = "1"},
    // Every LFS pointer.
    {.name = "/gitaly.BlobService/ListAllLFSPointers", .operation = kAccessor, .scope = kRepo,
     .shape = kServerStream, .target_repository = "1"},
    // Paths changed between commits.
    {.name = "/gitaly.DiffService/FindChangedPaths", .operation = kAccessor, .scope = kRepo,
     .shape = kServerStream, .target_repository = "1"},
    // git fetch over HTTP with the pack on a sidechannel (workhorse, GitLab 14+).
    {.name = "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel", .operation = kAccessor, .scope = kRepo,
     .shape = kUnary, .target_repository = "1"},
    // git fetch over SSH with the pack on a sidechannel (gitlab-shell, GitLab 14+).
    {.name = "/gitaly.SSHService/SSHUploadPackWithSidechannel", .operation = kAccessor, .scope = kRepo,
     .shape = kUnary, .target_repository = "1"},
    // Disk usage of every storage; praefect answers it for its virtual storages.
    {.name = "/gitaly.ServerService/DiskStatistics", .operation = kAccessor, .scope = kServer, .shape = kUnary},
    // Reference-transaction vote, cast by a node to praefect (which serves
    // it). Gitaly 13 declared it MUTATOR/REPOSITORY with the repository in
    // field 1; newer Gitaly marks the whole service as intercepted instead.
    {.name = "/gitaly.RefTransaction/VoteTransaction", .operation = kMutator, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Gracefully stops a transaction; as VoteTransaction.
    {.name = "/gitaly.RefTransaction/StopTransaction", .operation = kMutator, .scope = kRepo, .shape = kUnary,
     .target_repository = "1"},
    // Streams every repository on a node's storage (field 1); praefect calls
    // it for list-untracked-repositories and the repositories cleanup.
    {.name = "/gitaly.InternalGitaly/WalkRepos", .operation = kAccessor, .scope = kStorage,
     .shape = kServerStream, .storage = "1"},
};
#pragma GCC diagnostic pop

}  // namespace

std::span<const TableEntry> KnownMethodTable() { return kTable; }

}  // namespace praefect::protoregistry
