// The read commands of yuxi-configctl: get, list, dump, watch, status and health. They use
// only the public client headers (include/yuxi/config/), as any reader would.
#pragma once

#include "cli/requests.hpp"

namespace yuxi::config::cli {

// Each opens the segment of the request (SegmentError when it cannot), prints results to
// `io.out` and explanations to `io.err`.
Exit run(const GetRequest& r, Io io);
Exit run(const ListRequest& r, Io io);
Exit run(const DumpRequest& r, Io io);
Exit run(const WatchRequest& r, Io io);
Exit run(const StatusRequest& r, Io io);

}  // namespace yuxi::config::cli
