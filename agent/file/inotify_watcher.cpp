// Watches the source files' directories with inotify.
#include "agent/file/inotify_watcher.hpp"

#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

namespace yuxi::config::agent {
namespace {

constexpr std::uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
                                   IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::vector<std::size_t> indices(const std::vector<bool>& marks) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < marks.size(); ++i) {
        if (marks[i]) {
            out.push_back(i);
        }
    }
    return out;
}

}  // namespace

InotifyWatcher::InotifyWatcher(const std::vector<std::string>& paths) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "inotify_init1");
    }
    for (const std::string& p : paths) {
        const std::filesystem::path path(p);
        std::string dir = path.parent_path().string();
        if (dir.empty()) {
            dir = "/";
        }
        auto it =
            std::find_if(dirs_.begin(), dirs_.end(), [&](const Dir& d) { return d.path == dir; });
        if (it == dirs_.end()) {
            dirs_.push_back(Dir{dir, -1, {}});
            it = std::prev(dirs_.end());
        }
        it->files.push_back(files_.size());
        files_.push_back(
            File{static_cast<std::size_t>(it - dirs_.begin()), path.filename().string()});
    }
}

InotifyWatcher::~InotifyWatcher() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

std::size_t InotifyWatcher::unwatched() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(dirs_.begin(), dirs_.end(), [](const Dir& d) { return d.wd < 0; }));
}

void InotifyWatcher::mark_dir(const Dir& d, std::vector<bool>& changed) const {
    for (const std::size_t f : d.files) {
        changed[f] = true;
    }
}

void InotifyWatcher::forget(int wd) {
    const auto it = by_wd_.find(wd);
    if (it == by_wd_.end()) {
        return;
    }
    for (const std::size_t d : it->second) {
        dirs_[d].wd = -1;
        spdlog::warn("{}: directory gone; watching for it to come back", dirs_[d].path);
    }
    by_wd_.erase(it);
}

std::vector<std::size_t> InotifyWatcher::watch_missing() {
    std::vector<bool> changed(files_.size(), false);
    for (std::size_t i = 0; i < dirs_.size(); ++i) {
        Dir& d = dirs_[i];
        if (d.wd >= 0) {
            continue;
        }
        const int wd = ::inotify_add_watch(fd_, d.path.c_str(), kDirMask);
        if (wd < 0) {
            // Logged once by the caller's view of the files (they are missing); a failure
            // other than absence is worth a line of its own.
            if (errno != ENOENT && errno != ENOTDIR) {
                spdlog::error("{}: cannot watch directory: {}", d.path, std::strerror(errno));
            }
            continue;
        }
        d.wd = wd;
        by_wd_[wd].push_back(i);
        spdlog::debug("{}: watching directory", d.path);
        mark_dir(d, changed);
    }
    return indices(changed);
}

InotifyWatcher::Events InotifyWatcher::read_events() {
    Events out;
    std::vector<bool> changed(files_.size(), false);
    alignas(inotify_event) char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                spdlog::error("inotify read: {}", std::strerror(errno));
            }
            break;
        }
        if (n == 0) {
            break;
        }
        for (ssize_t at = 0; at < n;) {
            inotify_event ev{};
            std::memcpy(&ev, buf + at, sizeof ev);
            const std::string_view name =
                ev.len > 0 ? std::string_view(buf + at + sizeof ev) : std::string_view();
            at += static_cast<ssize_t>(sizeof ev + ev.len);

            if ((ev.mask & IN_Q_OVERFLOW) != 0) {
                out.overflow = true;
                std::fill(changed.begin(), changed.end(), true);
                continue;
            }
            const auto it = by_wd_.find(ev.wd);
            if (it == by_wd_.end()) {
                continue;  // a watch already forgotten
            }
            const std::vector<std::size_t> dirs = it->second;
            if ((ev.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
                // A moved directory keeps its watch under its new name: drop it, so that
                // watch_missing() follows the path, not the inode.
                if ((ev.mask & IN_MOVE_SELF) != 0) {
                    ::inotify_rm_watch(fd_, ev.wd);
                }
                for (const std::size_t d : dirs) {
                    mark_dir(dirs_[d], changed);
                }
                forget(ev.wd);
                continue;
            }
            for (const std::size_t d : dirs) {
                const Dir& dir = dirs_[d];
                if (name.starts_with("..")) {
                    mark_dir(dir, changed);
                    continue;
                }
                for (const std::size_t f : dir.files) {
                    if (files_[f].name != name) {
                        continue;
                    }
                    if ((ev.mask & IN_CREATE) != 0) {
                        struct stat st {};
                        const std::string full = dir.path + "/" + std::string(name);
                        if (::lstat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
                            continue;  // being written: its IN_CLOSE_WRITE follows
                        }
                    }
                    changed[f] = true;
                }
            }
        }
    }
    out.changed = indices(changed);
    return out;
}

}  // namespace yuxi::config::agent
