// The file-mode source: TOML config files and JSON metadata files to entries.
#include "agent/file/file_source.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/toml_json.hpp"

namespace yuxi::config::agent {
namespace {

enum class ReadStatus { ok, missing, error };

struct FileText {
    ReadStatus status = ReadStatus::error;
    std::string text;
    std::string error;
};

FileText read_whole(const std::string& path) {
    FileText out;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        out.status = (err == ENOENT || err == ENOTDIR) ? ReadStatus::missing : ReadStatus::error;
        out.error = std::strerror(err);
        return out;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        out.error = "not a regular file";
        ::close(fd);
        return out;
    }
    // The size may change while we read (an editor writing in place): the limit is kept
    // while reading too, so a file that grows without end costs a bounded buffer.
    if (static_cast<std::uint64_t>(st.st_size) > kMaxDocumentBytes) {
        out.error = "larger than " + std::to_string(kMaxDocumentBytes >> 20) + " MiB";
        ::close(fd);
        return out;
    }
    out.text.reserve(static_cast<std::size_t>(st.st_size));
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0 && out.text.size() + static_cast<std::size_t>(n) > kMaxDocumentBytes) {
            out.error = "larger than " + std::to_string(kMaxDocumentBytes >> 20) + " MiB";
            break;
        }
        if (n > 0) {
            out.text.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0) {
            out.status = ReadStatus::ok;
            break;
        } else if (errno != EINTR) {
            out.error = std::strerror(errno);
            break;
        }
    }
    ::close(fd);
    return out;
}

std::string absolute(const std::string& path) {
    std::error_code ec;
    const auto p = std::filesystem::absolute(path, ec);
    return ec ? path : p.lexically_normal().string();
}

bool has_content(const SourceFile& f) {
    return f.kind == FileKind::config ? f.table.has_value() : f.text.has_value();
}

// What readers keep seeing while a file is bad, for the log line.
const char* keeping(const SourceFile& f) {
    return has_content(f) ? "keeping its last good content" : "nothing from it is published";
}

}  // namespace

Plan plan_changes(const EntryMap& published, const EntryMap& wanted, std::uint64_t max_value_bytes,
                  const ValueSchemas& schemas) {
    Plan plan;
    auto refuse = [&](const EntryKey& k, std::string reason, std::string_view kind) {
        plan.refused.push_back({k, std::move(reason), kind});
    };
    for (const auto& [k, v] : wanted) {
        if (k.key.empty() || k.key.size() > layout::kMaxKeyLen) {
            refuse(k,
                   "key length " + std::to_string(k.key.size()) + " is outside 1.." +
                       std::to_string(layout::kMaxKeyLen),
                   "key");
            continue;
        }
        if (v.size() > max_value_bytes) {
            refuse(k,
                   "value of " + std::to_string(v.size()) + " bytes exceeds --max-value-bytes " +
                       std::to_string(max_value_bytes),
                   "too_large");
            continue;
        }
        const auto it = published.find(k);
        if (it != published.end() && it->second == v) {
            continue;  // unchanged: checked when it was published
        }
        if (const auto bad = schemas.validate_text(k.ns, k.key, v)) {
            refuse(k, "breaks the schema of '" + bad->pattern + "': " + bad->message(), "schema");
            continue;
        }
        plan.changes.push_back(Change{k.ns, k.key, v, ""});
    }
    for (const auto& [k, v] : published) {
        if (!wanted.contains(k)) {
            plan.changes.push_back(Change{k.ns, k.key, std::nullopt, ""});
        }
    }
    return plan;
}

FileSource::FileSource(const Options& options) {
    for (const std::string& p : options.config_files) {
        SourceFile f;
        f.kind = FileKind::config;
        f.path = absolute(p);
        f.shown = p;
        files_.push_back(std::move(f));
    }
    for (const MetadataFile& m : options.metadata) {
        SourceFile f;
        f.kind = FileKind::metadata;
        f.name = m.name;
        f.path = absolute(m.path);
        f.shown = m.path;
        files_.push_back(std::move(f));
    }
}

bool FileSource::reload(std::size_t index) {
    SourceFile& f = files_.at(index);
    const FileStatus before = f.status;
    FileText read = read_whole(f.path);
    if (read.status == ReadStatus::missing) {
        ++stats_.missing_files;
        f.status = FileStatus::missing;
        f.problem = f.shown + ": missing (" + read.error + ")";
        spdlog::error("{}; {}", f.problem, keeping(f));
        return false;
    }
    if (read.status == ReadStatus::error) {
        ++stats_.read_errors;
        f.status = FileStatus::invalid;
        f.problem = f.shown + ": cannot be read: " + read.error;
        spdlog::error("{}; {}", f.problem, keeping(f));
        return false;
    }
    DocumentResult doc = f.kind == FileKind::config ? parse_toml_document(read.text, f.shown)
                                                    : parse_json_document(read.text, f.shown);
    if (!doc) {
        const DocumentProblem& p = doc.reason();
        ++(p.kind == DocumentProblem::Kind::syntax ? stats_.syntax_errors
                                                   : stats_.conversion_errors);
        f.status = FileStatus::invalid;
        f.problem = p.message;
        spdlog::error("{}; {}", p.message, keeping(f));
        return false;
    }
    if (f.kind == FileKind::config) {
        f.table = std::move(*doc);
    } else {
        f.text = canonical(*doc);
    }
    ++stats_.files_read;
    f.status = FileStatus::ok;
    f.problem.clear();
    if (before == FileStatus::missing || before == FileStatus::invalid) {
        spdlog::info("{}: read successfully again", f.shown);
    } else {
        spdlog::debug("{}: read {} bytes", f.shown, read.text.size());
    }
    return true;
}

EntryMap FileSource::entries() const {
    EntryMap out;
    nlohmann::json merged = nlohmann::json::object();
    for (const SourceFile& f : files_) {
        if (f.kind == FileKind::config && f.table) {
            merge_json(merged, *f.table);
        }
    }
    for (const auto& [k, v] : merged.items()) {
        out.emplace(EntryKey{Namespace::config, k}, canonical(v));
    }
    for (const SourceFile& f : files_) {
        if (f.kind == FileKind::metadata && f.text) {
            out.emplace(EntryKey{Namespace::metadata, f.name}, *f.text);
        }
    }
    return out;
}

bool FileSource::healthy() const noexcept {
    for (const SourceFile& f : files_) {
        if (f.status != FileStatus::ok) {
            return false;
        }
    }
    return true;
}

}  // namespace yuxi::config::agent
