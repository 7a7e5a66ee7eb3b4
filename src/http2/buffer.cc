#include "http2/buffer.h"

#include <cstring>
#include <new>

namespace praefect::http2 {

// ---- Block -------------------------------------------------------------------

Block::Block(size_t capacity) : data_(reinterpret_cast<char*>(this + 1)), capacity_(capacity) {}

Block* Block::New(size_t capacity) {
  void* memory = ::operator new(sizeof(Block) + capacity);
  return new (memory) Block(capacity);
}

Block* Block::Adopt(std::string&& bytes) {
  Block* b = New(0);
  b->adopted_ = true;
  b->string_ = std::move(bytes);
  b->data_ = b->string_.data();
  b->capacity_ = b->used_ = b->string_.size();
  return b;
}

void Block::Free() {
  this->~Block();
  ::operator delete(static_cast<void*>(this));
}

// ---- ByteQueue ---------------------------------------------------------------

void ByteQueue::Ring::Grow() {
  auto bigger = std::make_unique<Segment[]>(cap_ * 2);
  for (size_t i = 0; i < count_; ++i) bigger[i] = (*this)[i];
  heap_ = std::move(bigger);
  buf_ = heap_.get();
  cap_ *= 2;
  head_ = 0;
}

void ByteQueue::Append(std::string_view bytes) {
  while (!bytes.empty()) {
    if (!own_ || own_->room() == 0) {
      // Small first (a queue that carries one short message stays small),
      // doubling up to kOwnBlock.
      size_t capacity = own_ ? own_->capacity() * 2 : kFirstOwnBlock;
      while (capacity < bytes.size() && capacity < kOwnBlock) capacity *= 2;
      own_ = BlockRef::Take(Block::New(capacity < kOwnBlock ? capacity : kOwnBlock));
    }
    const size_t n = bytes.size() < own_->room() ? bytes.size() : own_->room();
    char* at = own_->tail();
    std::memcpy(at, bytes.data(), n);
    own_->Commit(n);
    bytes.remove_prefix(n);
    size_ += n;
    // Right after the previous copy in the same block: one segment grows.
    if (!segments_.empty()) {
      Segment& last = segments_.back();
      if (last.block == own_.get() && last.data + last.size == at) {
        last.size += n;
        continue;
      }
    }
    own_->Ref();
    segments_.push_back(Segment{own_.get(), at, n, false});
  }
}

void ByteQueue::Append(const Slice& slice) {
  Block* block = slice.block();
  if (block == nullptr || slice.size() < kMinReference) return Append(slice.view());
  const bool same_block = !segments_.empty() && segments_.back().block == block;
  if (!same_block && pinned_ + block->capacity() > 2 * (size_ + slice.size()) + 128 * 1024)
    return Append(slice.view());
  block->Ref();
  segments_.push_back(Segment{block, slice.data(), slice.size(), !same_block});
  if (!same_block) pinned_ += block->capacity();
  size_ += slice.size();
}

void ByteQueue::Adopt(std::string&& bytes) {
  if (bytes.empty()) return;
  if (bytes.size() < kMinReference) return Append(std::string_view(bytes));
  Block* b = Block::Adopt(std::move(bytes));
  segments_.push_back(Segment{b, b->data(), b->used(), true});  // the new reference is the segment's
  pinned_ += b->capacity();
  size_ += b->used();
}

void ByteQueue::MoveTo(ByteQueue* to, size_t n) {
  while (n > 0) {
    Segment& s = segments_.front();
    const size_t take = n < s.size ? n : s.size;
    const bool same_block = !to->segments_.empty() && to->segments_.back().block == s.block;
    if (same_block && to->segments_.back().data + to->segments_.back().size == s.data) {
      to->segments_.back().size += take;  // contiguous with what `to` ends with
    } else {
      s.block->Ref();
      to->segments_.push_back(Segment{s.block, s.data, take, !same_block});
      if (!same_block) to->pinned_ += s.block->capacity();
    }
    to->size_ += take;
    Drop(take);
    n -= take;
  }
}

void ByteQueue::Drop(size_t n) {
  size_ -= n;
  while (n > 0) {
    Segment& s = segments_.front();
    if (n < s.size) {
      s.data += n;
      s.size -= n;
      return;
    }
    n -= s.size;
    if (s.counted) {
      // The next segment of the same block inherits the count.
      if (segments_.size() > 1 && segments_[1].block == s.block && !segments_[1].counted) {
        segments_[1].counted = true;
      } else {
        pinned_ -= s.block->capacity();
      }
    }
    s.block->Unref();
    segments_.pop_front();
  }
}

int ByteQueue::Peek(iovec* iov, int max) const {
  int i = 0;
  for (; i < max && static_cast<size_t>(i) < segments_.size(); ++i) {
    const Segment& s = segments_[static_cast<size_t>(i)];
    iov[i].iov_base = const_cast<char*>(s.data);
    iov[i].iov_len = s.size;
  }
  return i;
}

std::string ByteQueue::Copy(size_t n) const {
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < segments_.size() && out.size() < n; ++i) {
    const Segment& s = segments_[i];
    const size_t take = n - out.size() < s.size ? n - out.size() : s.size;
    out.append(s.data, take);
  }
  return out;
}

}  // namespace praefect::http2
