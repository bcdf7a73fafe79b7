// Loading and re-loading the signing keys (signing_keys.hpp).
#include "agent/fleet/signing_keys.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "core/text.hpp"

namespace yuxi::config::agent {
namespace {

// A key's text from a file, bounded; nothing if it cannot be read.
std::optional<std::string> read_small(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rbe");
    if (f == nullptr) {
        return std::nullopt;
    }
    std::string text(4096, '\0');
    const std::size_t n = std::fread(text.data(), 1, text.size(), f);
    std::fclose(f);
    if (n == text.size()) {
        return std::nullopt;
    }
    text.resize(n);
    return text;
}

// The key from a file or a variable; throws OptionsError naming the source only. An
// `optional` key (the previous one) whose file is gone or empty is no key: that is how a
// rotation ends.
std::optional<SigningKey> key_of(const std::string& file, const std::string& env_text,
                                 const char* variable, bool optional) {
    if (file.empty() && env_text.empty()) {
        return std::nullopt;
    }
    const std::optional<std::string> text = file.empty() ? env_text : read_small(file);
    if (optional && (!text || trim(*text).empty())) {
        return std::nullopt;
    }
    if (!text) {
        throw OptionsError("cannot read the signing key file " + file);
    }
    auto key = SigningKey::from_base64(*text, file.empty() ? std::string(variable) : file);
    if (!key) {
        throw OptionsError(key.reason());
    }
    return std::move(*key);
}

}  // namespace

SigningKeys::SigningKeys(const SigningSettings& settings) : settings_(settings) {
    current_file_.path = settings.key_file;
    previous_file_.path = settings.previous_file;
    (void)changed(current_file_);
    (void)changed(previous_file_);
    ring_ = load();
    spdlog::info("signing Redis documents with key {}{}", ring_->current().id(),
                 ring_->previous() ? "; also accepting key " + ring_->previous()->id() : "");
}

std::unique_ptr<KeyRing> SigningKeys::load() const {
    auto current = key_of(settings_.key_file, settings_.key_env, "YUXI_CONFIG_SIGNING_KEY", false);
    auto previous = key_of(settings_.previous_file, settings_.previous_env,
                           "YUXI_CONFIG_SIGNING_KEY_PREVIOUS", true);
    std::vector<SigningKey> grace;
    for (const Retired& r : retired_) {
        grace.push_back(r.key);
    }
    return std::make_unique<KeyRing>(std::move(*current), std::move(previous), std::move(grace));
}

bool SigningKeys::changed(Watched& w) {
    if (w.path.empty()) {
        return false;
    }
    struct stat st {};
    if (::stat(w.path.c_str(), &st) != 0) {
        // Gone: a previous key taken out of the Secret. (A Secret's update swaps a
        // symlink atomically, so a file is never missing in the middle of one.)
        const bool was_there = w.inode != 0;
        w = Watched{w.path};
        return was_there;
    }
    const bool moved = st.st_ino != w.inode || st.st_dev != w.device || st.st_size != w.size ||
                       st.st_mtim.tv_sec != w.modified.tv_sec ||
                       st.st_mtim.tv_nsec != w.modified.tv_nsec;
    w.inode = st.st_ino;
    w.device = st.st_dev;
    w.size = st.st_size;
    w.modified = st.st_mtim;
    return moved;
}

bool SigningKeys::refresh() {
    const auto now = std::chrono::steady_clock::now();
    const std::size_t before = retired_.size();
    std::erase_if(retired_, [&](const Retired& r) { return now - r.since > kRetiredGrace; });
    const bool expired = retired_.size() != before;
    const bool current_moved = changed(current_file_);
    const bool previous_moved = changed(previous_file_);
    if (!current_moved && !previous_moved && !expired) {
        return false;
    }
    try {
        // Keys configured a moment ago and not now stay accepted for the grace.
        const std::vector<SigningKey> old = ring_->accepted();
        auto configured = load();
        for (const SigningKey& k : old) {
            bool kept = false;
            for (const SigningKey& n : configured->accepted()) {
                kept = kept || n.id() == k.id();
            }
            const bool already =
                std::any_of(retired_.begin(), retired_.end(),
                            [&](const Retired& r) { return r.key.id() == k.id(); });
            if (!kept && !already && (current_moved || previous_moved)) {
                retired_.push_back({k, now});
            }
        }
        auto ring = load();
        const auto ids = [](const KeyRing& r) {
            std::string out;
            for (const SigningKey& k : r.accepted()) {
                out += k.id() + ",";
            }
            return out;
        };
        if (ids(*ring) == ids(*ring_)) {
            return false;
        }
        if (expired && !current_moved && !previous_moved) {
            spdlog::info("signing keys: no longer accepting retired keys");
            ring_ = std::move(ring);
            return true;
        }
        spdlog::info("signing keys changed: signing with key {}{}", ring->current().id(),
                     ring->previous() ? "; also accepting key " + ring->previous()->id() : "");
        ring_ = std::move(ring);
        return true;
    } catch (const OptionsError& e) {
        spdlog::error("{}; keeping signing key {}", e.what(), ring_->current().id());
        return false;
    }
}

}  // namespace yuxi::config::agent
