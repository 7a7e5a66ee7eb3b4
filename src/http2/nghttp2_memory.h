#pragma once

// The allocator nghttp2 sessions get (session.cc): per-thread free lists of
// power-of-two pieces for nghttp2's small, short-lived objects (stream and
// frame objects, header-table entries: about 18 per proxied call), larger
// ones from malloc. Under AddressSanitizer plain malloc, so that nghttp2's
// overflows and uses after free are still caught (free lists would hide
// them).

#include <nghttp2/nghttp2.h>

namespace praefect::http2 {

// Null under AddressSanitizer (nghttp2's default, malloc).
nghttp2_mem* Nghttp2Allocator();

}  // namespace praefect::http2
