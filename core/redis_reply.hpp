// Reading hiredis replies without trusting their shape.
#pragma once

#include <hiredis/hiredis.h>

#include <string_view>

namespace yuxi::config {

// The text of a string, status or error reply; empty for anything else, or null.
inline std::string_view reply_text(const redisReply* r) noexcept {
    return r != nullptr && r->str != nullptr &&
                   (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                    r->type == REDIS_REPLY_ERROR)
               ? std::string_view(r->str, r->len)
               : std::string_view();
}

}  // namespace yuxi::config
