// JSON → TOML text, and atomic replacement of files.
#include "admin/toml_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>

#include "core/toml_json.hpp"
#include "yuxi/config/admin.hpp"

namespace yuxi::config::admin {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

toml::table to_table(const json& object, const std::string& path);

[[noreturn]] void refuse(const std::string& path, std::string_view what) {
    throw AdminError(AdminError::Kind::usage,
                     "config '" + path + "' " + std::string(what) +
                         ", which TOML cannot hold, so file mode could not publish it; nothing "
                         "was written");
}

// Where a converted value goes: the end of an array, or a key of a table.
struct ArraySink {
    toml::array& array;
    template <typename T>
    void operator()(T&& x) {
        array.push_back(std::forward<T>(x));
    }
};

struct TableSink {
    toml::table& table;
    const std::string& key;
    template <typename T>
    void operator()(T&& x) {
        table.insert_or_assign(key, std::forward<T>(x));
    }
};

template <typename Sink>
void add_value(Sink sink, const json& v, const std::string& path) {
    switch (v.type()) {
        case json::value_t::null:
            refuse(path, "is null");
        case json::value_t::boolean:
            sink(v.get<bool>());
            break;
        case json::value_t::number_integer:
            sink(v.get<std::int64_t>());
            break;
        case json::value_t::number_unsigned:
            if (v.get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                refuse(path, "holds an integer above 2^63-1");
            }
            sink(v.get<std::int64_t>());
            break;
        case json::value_t::number_float:
            sink(v.get<double>());
            break;
        case json::value_t::string:
            sink(v.get<std::string>());
            break;
        case json::value_t::array: {
            toml::array a;
            for (std::size_t i = 0; i < v.size(); ++i) {
                add_value(ArraySink{a}, v[i], path + "[" + std::to_string(i) + "]");
            }
            sink(std::move(a));
            break;
        }
        case json::value_t::object:
            sink(to_table(v, path));
            break;
        default:
            refuse(path, "holds binary data");
    }
}

toml::table to_table(const json& object, const std::string& path) {
    toml::table t;
    for (const auto& [k, v] : object.items()) {
        const std::string p = path.empty() ? k : key_path_append(path, k);
        add_value(TableSink{t, k}, v, p);
    }
    return t;
}

[[noreturn]] void write_failed(const fs::path& p, const char* step, int error) {
    throw AdminError(AdminError::Kind::unavailable, "cannot write '" + p.string() + "' (" + step +
                                                        "): " + std::strerror(error) +
                                                        "; no file was replaced");
}

void fsync_dir(const fs::path& dir) {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)::fsync(fd);
        ::close(fd);
    }
}

// A temporary file beside the target (same file system, so rename is atomic), complete
// and on disk before anything is renamed.
void write_temp(FileOutput& o) {
    const fs::path dir = o.path.parent_path();
    // Not `"." + std::string&&`: GCC 12 at -O3 reports a false -Wrestrict on it (bug 105651).
    std::string name = ".";
    name += o.path.filename().string();
    name += ".tmp-XXXXXX";
    std::string tmpl = (dir / name).string();
    const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0) {
        write_failed(o.path, "create a temporary file", errno);
    }
    o.temp = tmpl;
    struct stat st {};
    const mode_t mode = ::stat(o.path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    std::size_t done = 0;
    while (done < o.text.size()) {
        const ssize_t n = ::write(fd, o.text.data() + done, o.text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            write_failed(o.path, "write", e);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        write_failed(o.path, "fsync", e);
    }
    ::close(fd);
}

}  // namespace

std::string toml_text(const json& config) {
    std::ostringstream ss;
    // No literal or multi-line strings, no relaxed float precision: what is written parses
    // back to exactly the same values.
    ss << toml::toml_formatter(to_table(config, ""), toml::format_flags::allow_unicode_strings |
                                                         toml::format_flags::indent_array_elements)
       << '\n';
    return ss.str();
}

void write_atomically(std::vector<FileOutput>& outputs) {
    try {
        for (FileOutput& o : outputs) {
            write_temp(o);
        }
    } catch (...) {
        for (const FileOutput& o : outputs) {
            if (!o.temp.empty()) {
                ::unlink(o.temp.c_str());
            }
        }
        throw;
    }
    for (const FileOutput& o : outputs) {
        if (::rename(o.temp.c_str(), o.path.c_str()) != 0) {
            const int e = errno;
            ::unlink(o.temp.c_str());
            write_failed(o.path, "rename", e);
        }
        fsync_dir(o.path.parent_path());
    }
}

}  // namespace yuxi::config::admin
