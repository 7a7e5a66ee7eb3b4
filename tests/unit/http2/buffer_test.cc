// Blocks, slices and byte queues: what is referenced is not copied, what
// is copied is copied once, and every reference is given back.
#include "http2/buffer.h"

#include <string>

#include <vector>

#include "test_support.h"

using praefect::http2::Block;
using praefect::http2::BlockRef;
using praefect::http2::ByteQueue;
using praefect::http2::Slice;

namespace {

// A block holding `bytes` (as a connection's read leaves one).
BlockRef BlockOf(const std::string& bytes) {
  BlockRef b = BlockRef::Take(Block::New(bytes.size()));
  bytes.copy(b->tail(), bytes.size());
  b->Commit(bytes.size());
  return b;
}

std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

std::string Drain(ByteQueue& q) {
  std::string all = q.Copy(q.size());
  q.Clear();
  return all;
}

void test_small_appends_are_copied_and_coalesced(void**) {
  ByteQueue q;
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    std::string piece = Pattern(1 + i % 37, static_cast<char>('a' + i % 5));
    q.Append(std::string_view(piece));
    expected += piece;
  }
  assert_int_equal(q.size(), expected.size());
  // Copies land in the queue's own blocks, contiguously: few segments.
  iovec iov[64];
  const int n = q.Peek(iov, 64);
  assert_true(n <= 8);
  assert_true(q.pinned() == 0);
  assert_true(Drain(q) == expected);
  assert_int_equal(q.size(), 0);
}

void test_large_slices_are_referenced_not_copied(void**) {
  const std::string data = Pattern(64 * 1024, 'A');
  BlockRef block = BlockOf(data);
  ByteQueue q;
  q.Append(Slice(block.get(), block->data() + 100, 20000));
  q.Append(Slice(block.get(), block->data() + 30000, 10000));
  assert_false(block->unique());  // the queue holds it
  iovec iov[4];
  assert_int_equal(q.Peek(iov, 4), 2);
  // The very bytes of the block, not a copy.
  assert_ptr_equal(iov[0].iov_base, block->data() + 100);
  assert_ptr_equal(iov[1].iov_base, block->data() + 30000);
  // Pinned once, however many slices of the block.
  assert_int_equal(q.pinned(), block->capacity());
  assert_true(q.Copy(q.size()) == data.substr(100, 20000) + data.substr(30000, 10000));
  q.Drop(20000);
  assert_int_equal(q.pinned(), block->capacity());  // the second slice still pins it
  q.Drop(10000);
  assert_int_equal(q.pinned(), 0);
  assert_true(block->unique());  // every reference given back
}

void test_tiny_or_blockless_slices_are_copied(void**) {
  BlockRef block = BlockOf(Pattern(8192, 'k'));
  ByteQueue q;
  q.Append(Slice(block.get(), block->data(), ByteQueue::kMinReference - 1));
  assert_true(block->unique());
  std::string transient = Pattern(5000, 't');
  q.Append(Slice(std::string_view(transient)));
  transient.assign(transient.size(), 'x');  // the queue does not look at it again
  assert_true(Drain(q) == Pattern(8192, 'k').substr(0, ByteQueue::kMinReference - 1) + Pattern(5000, 't'));
}

void test_pinning_stays_bounded(void**) {
  // A peer interleaving streams: every 64 KiB block carries 4 KiB for this
  // queue. Referencing them all would pin 16 times the queued bytes.
  ByteQueue q;
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    BlockRef block = BlockOf(Pattern(64 * 1024, static_cast<char>('a' + i % 20)));
    q.Append(Slice(block.get(), block->data() + 1000, 4096));
    expected += std::string(block->data() + 1000, 4096);
  }
  assert_int_equal(q.size(), expected.size());
  assert_true(q.pinned() <= 2 * q.size() + 128 * 1024 + 64 * 1024);
  assert_true(Drain(q) == expected);
}

void test_move_keeps_order_and_references(void**) {
  BlockRef block = BlockOf(Pattern(40000, 'm'));
  ByteQueue from, to;
  from.Append(std::string_view("head:"));
  from.Append(Slice(block.get(), block->data(), 40000));
  from.Append(std::string_view(":tail"));
  to.Append(std::string_view("frame-header"));
  // Move in uneven steps, splitting segments.
  size_t total = from.size();
  for (size_t step : {3, 4000, 1, 30000}) {
    from.MoveTo(&to, step);
    total -= step;
    assert_int_equal(from.size(), total);
  }
  from.MoveTo(&to, from.size());
  assert_true(from.empty());
  assert_true(Drain(to) == "frame-header" + std::string("head:") + Pattern(40000, 'm') + ":tail");
  assert_true(block->unique());
}

void test_adopted_strings(void**) {
  ByteQueue q;
  std::string big = Pattern(10000, 'z');
  const char* where = big.data();
  q.Adopt(std::move(big));
  iovec iov[2];
  assert_int_equal(q.Peek(iov, 2), 1);
  assert_ptr_equal(iov[0].iov_base, where);  // taken over, not copied
  q.Adopt(std::string("small"));
  assert_true(Drain(q) == Pattern(10000, 'z') + "small");
}

void test_many_segments_grow_the_ring(void**) {
  std::vector<BlockRef> blocks;
  ByteQueue q;
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    blocks.push_back(BlockOf(Pattern(3000, static_cast<char>('0' + i % 40))));
    q.Append(Slice(blocks.back().get(), blocks.back()->data(), 3000));
    q.Append(std::string_view("|"));
    expected += Pattern(3000, static_cast<char>('0' + i % 40)) + "|";
    if (i % 7 == 6) {  // drop some from the front while appending
      const size_t n = 2500;
      q.Drop(n);
      expected.erase(0, n);
    }
  }
  assert_true(Drain(q) == expected);
  for (const BlockRef& b : blocks) assert_true(b->unique());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_appends_are_copied_and_coalesced),
      cmocka_unit_test(test_large_slices_are_referenced_not_copied),
      cmocka_unit_test(test_tiny_or_blockless_slices_are_copied),
      cmocka_unit_test(test_pinning_stays_bounded),
      cmocka_unit_test(test_move_keeps_order_and_references),
      cmocka_unit_test(test_adopted_strings),
      cmocka_unit_test(test_many_segments_grow_the_ring),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
