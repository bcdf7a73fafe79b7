// ConfigFileWriter: file mode's writes of a TOML file, checked, atomic, under an flock.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "admin/toml_file.hpp"
#include "core/json_document.hpp"
#include "core/text.hpp"
#include "core/toml_json.hpp"
#include "core/value_schema.hpp"
#include "yuxi/config/admin.hpp"

namespace yuxi::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxValueBytes = 64ULL << 20;

// The whole file, or nothing if it does not exist. Throws AdminError for other errors.
std::optional<std::string> read_text(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec) && !ec) {
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw AdminError(AdminError::Kind::unavailable,
                         "cannot read '" + path + "': " + std::strerror(errno));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// An exclusive flock on a file beside the target, held while this lives. The target itself
// cannot carry the lock: each write renames a new inode over it.
class FileLock {
  public:
    explicit FileLock(const std::string& path)
        : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
        if (fd_ < 0) {
            throw AdminError(AdminError::Kind::unavailable,
                             "cannot open the lock file '" + path + "': " + std::strerror(errno));
        }
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno != EINTR) {
                const int e = errno;
                ::close(fd_);
                throw AdminError(AdminError::Kind::unavailable,
                                 "cannot lock '" + path + "': " + std::strerror(e));
            }
        }
    }
    ~FileLock() { ::close(fd_); }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

  private:
    int fd_;
};

}  // namespace

struct ConfigFileWriter::Impl {
    std::string path;
    std::string lock_path;
    ValueSchemas schemas;

    json load() const {
        const auto text = read_text(path);
        if (!text) {
            return json::object();
        }
        auto doc = parse_toml_document(*text, path);
        if (!doc) {
            throw AdminError(AdminError::Kind::usage,
                             doc.reason().message + "; fix the file first, nothing was written");
        }
        return std::move(*doc);
    }
};

ConfigFileWriter::ConfigFileWriter(std::string path, std::string value_schema_file)
    : impl_(std::make_unique<Impl>()) {
    const fs::path p = fs::absolute(path).lexically_normal();
    impl_->path = p.string();
    impl_->lock_path = (p.parent_path() / ("." + p.filename().string() + ".lock")).string();
    if (value_schema_file.empty()) {
        return;
    }
    const auto text = read_text(value_schema_file);
    if (!text) {
        throw AdminError(AdminError::Kind::usage,
                         "no value schema file '" + value_schema_file + "'");
    }
    auto rules = rules_from_file_text(*text);
    auto compiled = rules ? ValueSchemas::compile(std::move(*rules))
                          : Decoded<ValueSchemas>::refused(rules.reason());
    if (!compiled) {
        throw AdminError(AdminError::Kind::usage, "the value schema file '" + value_schema_file +
                                                      "' cannot be used: " + compiled.reason());
    }
    impl_->schemas = std::move(*compiled);
}

ConfigFileWriter::~ConfigFileWriter() = default;
ConfigFileWriter::ConfigFileWriter(ConfigFileWriter&&) noexcept = default;
ConfigFileWriter& ConfigFileWriter::operator=(ConfigFileWriter&&) noexcept = default;

const std::string& ConfigFileWriter::path() const noexcept {
    return impl_->path;
}

std::string ConfigFileWriter::read() const {
    return canonical(impl_->load());
}

bool ConfigFileWriter::apply(const std::vector<FileWrite>& writes) {
    // Parsed before the lock: bad input costs the other writers no wait.
    std::vector<std::pair<const std::vector<std::string>*, std::optional<json>>> parsed;
    for (const auto& [path, text] : writes) {
        if (path.empty() ||
            std::any_of(path.begin(), path.end(), [](const std::string& k) { return k.empty(); })) {
            throw AdminError(AdminError::Kind::usage, "a key cannot be empty");
        }
        if (!text) {
            parsed.emplace_back(&path, std::nullopt);
            continue;
        }
        auto doc = parse_json(*text, {kMaxValueBytes, kMaxValueDepth});
        if (!doc) {
            throw AdminError(AdminError::Kind::usage, "the value of config '" + printable(path[0]) +
                                                          "' is not valid JSON (" + doc.reason() +
                                                          "); nothing was written");
        }
        parsed.emplace_back(&path, std::move(*doc));
    }
    const FileLock lock(impl_->lock_path);
    const json current = impl_->load();
    json next = current;
    std::set<std::string> touched;
    for (auto& [path, value] : parsed) {
        json* at = &next;
        for (std::size_t i = 0; i + 1 < path->size(); ++i) {
            json& child = (*at)[(*path)[i]];
            if (!child.is_object()) {
                child = json::object();
            }
            at = &child;
        }
        if (value) {
            (*at)[path->back()] = std::move(*value);
        } else {
            at->erase(path->back());
        }
        touched.insert(path->front());
    }
    for (const std::string& key : touched) {
        if (!next.contains(key)) {
            continue;
        }
        if (const auto v = impl_->schemas.validate(Namespace::config, key, next[key])) {
            throw InvalidValueError("config '" + printable(key) + "' breaks its schema (pattern '" +
                                        printable(v->pattern) + "'): " + v->message() +
                                        "; nothing was written",
                                    key, v->pointer, v->rule + " (" + v->detail + ")");
        }
    }
    if (next == current) {
        return false;
    }
    std::vector<admin::FileOutput> out = {{impl_->path, admin::toml_text(next), {}}};
    admin::write_atomically(out);
    return true;
}

}  // namespace yuxi::config
