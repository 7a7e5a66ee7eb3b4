#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

// Bytes that move through the data plane without being copied: a socket
// reads into a Block, DATA payloads are handed on as Slices of it, stream
// and connection queues hold references, and the connection writes them
// with writev. Not thread-safe: a block lives on one loop (reference counts
// are plain integers).
namespace praefect::http2 {

// A reference-counted run of bytes with one writer: whoever made it appends
// at `used()` (Commit) and hands out ranges below it; readers only read
// their ranges. Allocated in one piece with its bytes, or adopting a
// std::string.
class Block {
 public:
  static Block* New(size_t capacity);
  static Block* Adopt(std::string&& bytes);

  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  void Ref() { ++refs_; }
  void Unref() {
    if (--refs_ == 0) Free();
  }
  bool unique() const { return refs_ == 1; }

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }
  size_t room() const { return capacity_ - used_; }
  char* tail() { return data_ + used_; }
  // The writer appended `n` bytes at tail().
  void Commit(size_t n) { used_ += n; }
  // The writer starts over. REQUIRES: unique() (no range is handed out).
  void Rewind() { used_ = 0; }
  bool Contains(const char* p, size_t n) const { return p >= data_ && p + n <= data_ + used_; }

 private:
  explicit Block(size_t capacity);
  ~Block() = default;
  void Free();

  uint32_t refs_ = 1;
  bool adopted_ = false;
  char* data_;
  size_t capacity_;
  size_t used_ = 0;
  std::string string_;  // the adopted bytes
};

// An owning reference to a Block (or none).
class BlockRef {
 public:
  BlockRef() = default;
  // Takes over the reference `block` came with (New, Adopt).
  static BlockRef Take(Block* block) {
    BlockRef r;
    r.block_ = block;
    return r;
  }
  // A new reference to `block` (may be null).
  explicit BlockRef(Block* block) : block_(block) {
    if (block_ != nullptr) block_->Ref();
  }
  BlockRef(const BlockRef& other) : BlockRef(other.block_) {}
  BlockRef(BlockRef&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  BlockRef& operator=(BlockRef other) noexcept {
    std::swap(block_, other.block_);
    return *this;
  }
  ~BlockRef() {
    if (block_ != nullptr) block_->Unref();
  }
  Block* get() const { return block_; }
  Block* operator->() const { return block_; }
  explicit operator bool() const { return block_ != nullptr; }
  void reset() { *this = BlockRef(); }

 private:
  Block* block_ = nullptr;
};

// A view of bytes, which may say which Block they lie in: a receiver that
// keeps them takes a reference to the block instead of copying (block()
// null: transient bytes, copy them).
class Slice {
 public:
  Slice() = default;
  Slice(std::string_view bytes) : data_(bytes.data()), size_(bytes.size()) {}  // NOLINT: a plain view converts
  Slice(Block* block, const char* data, size_t size) : block_(block), data_(data), size_(size) {}

  Block* block() const { return block_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_, size_}; }
  // The part from `offset`, `n` bytes at most (same block).
  Slice sub(size_t offset, size_t n = std::string_view::npos) const {
    const size_t start = offset < size_ ? offset : size_;
    const size_t len = n < size_ - start ? n : size_ - start;
    return Slice(block_, data_ + start, len);
  }

 private:
  Block* block_ = nullptr;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

// A FIFO of bytes made of references to blocks: what is appended by
// reference is never copied; what is appended by value is copied once into
// the queue's own blocks. Moving bytes from one queue to another moves
// references.
class ByteQueue {
 public:
  // Slices smaller than this are copied rather than referenced: a
  // reference costs a segment (and pins its whole block).
  static constexpr size_t kMinReference = 2048;
  // The sizes of the blocks the queue copies into: the first, and the
  // largest.
  static constexpr size_t kFirstOwnBlock = 512;
  static constexpr size_t kOwnBlock = 16 * 1024;

  ByteQueue() = default;
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes of the blocks this queue keeps alive by reference (an estimate
  // from above): what the queue's bytes cost in memory.
  size_t pinned() const { return pinned_; }

  // Copies `bytes` in.
  void Append(std::string_view bytes);
  // References the slice's bytes when it says its block, is not tiny, and
  // the blocks pinned stay within about twice the queued bytes (a peer
  // that interleaves streams must not make a slow stream hold many mostly
  // foreign blocks); copies them otherwise.
  void Append(const Slice& slice);
  // Takes a string's bytes without copying them.
  void Adopt(std::string&& bytes);
  // Moves the first `n` bytes (REQUIRES: n <= size()) to the end of `to`.
  void MoveTo(ByteQueue* to, size_t n);
  // Drops the first `n` bytes (REQUIRES: n <= size()).
  void Drop(size_t n);
  void Clear() { Drop(size_); }
  // Fills up to `max` iovecs with the first bytes; returns how many.
  int Peek(iovec* iov, int max) const;
  // The first `n` bytes as one string (tests, rare paths).
  std::string Copy(size_t n) const;

 private:
  struct Segment {
    Block* block;  // one reference held
    const char* data;
    size_t size;
    bool counted;  // its block's capacity is in pinned_
  };
  // A FIFO of segments in a ring that doubles when full; the first two
  // live inline (most queues never hold more).
  class Ring {
   public:
    Ring() = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    bool empty() const { return count_ == 0; }
    size_t size() const { return count_; }
    Segment& operator[](size_t i) { return buf_[(head_ + i) & (cap_ - 1)]; }
    const Segment& operator[](size_t i) const { return buf_[(head_ + i) & (cap_ - 1)]; }
    Segment& front() { return buf_[head_]; }
    Segment& back() { return (*this)[count_ - 1]; }
    void push_back(const Segment& s) {
      if (count_ == cap_) Grow();
      (*this)[count_++] = s;
    }
    void pop_front() {
      head_ = (head_ + 1) & (cap_ - 1);
      --count_;
    }

   private:
    void Grow();
    Segment inline_[2];
    std::unique_ptr<Segment[]> heap_;
    Segment* buf_ = inline_;
    size_t cap_ = 2;  // a power of two
    size_t head_ = 0;
    size_t count_ = 0;
  };

  Ring segments_;
  size_t size_ = 0;
  size_t pinned_ = 0;
  BlockRef own_;  // the block Append copies into (this queue is its writer)

 public:
  ~ByteQueue() { Clear(); }
};

}  // namespace praefect::http2
