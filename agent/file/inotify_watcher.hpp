// Watches the directories that hold the source files, and says which files may have changed.
//
// Directories, not files, are watched: an editor that writes a temporary file and renames
// it over the original replaces the inode, and a watch on the old inode would see nothing
// more; a file that is deleted and comes back is only visible from its directory. Events:
//
//   IN_CLOSE_WRITE, IN_MOVED_TO    the file has new content
//   IN_DELETE, IN_MOVED_FROM       the file is gone (the source keeps its last good content)
//   IN_CREATE                      only for what is not a regular file (a symlink): a
//                                  regular file just created is still being written, and
//                                  its IN_CLOSE_WRITE follows
//   a name starting with ".."      Kubernetes' atomic writer swapped its ..data symlink:
//                                  every file of the directory may have changed
//   IN_Q_OVERFLOW                  events were lost: every file may have changed
//
// A directory that does not exist (yet), or that is deleted or moved away, is unwatched;
// watch_missing() tries again (the agent calls it every second) and reports its files once
// the directory is back.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

namespace yuxi::config::agent {

class InotifyWatcher {
  public:
    // `paths` are absolute file paths. Throws std::system_error if inotify is unavailable.
    explicit InotifyWatcher(const std::vector<std::string>& paths);
    ~InotifyWatcher();
    InotifyWatcher(const InotifyWatcher&) = delete;
    InotifyWatcher& operator=(const InotifyWatcher&) = delete;

    // Non-blocking; readable when events are queued.
    int fd() const noexcept { return fd_; }

    // Starts watching the directories not watched yet. Returns the indices (into `paths`)
    // of the files of every directory it started watching.
    std::vector<std::size_t> watch_missing();

    struct Events {
        std::vector<std::size_t> changed;  // indices into `paths`, each once
        bool overflow = false;
    };
    // Drains the queued events.
    Events read_events();

    // Directories not watched now.
    std::size_t unwatched() const noexcept;

  private:
    struct Dir {
        std::string path;
        int wd = -1;  // -1: not watched
        std::vector<std::size_t> files;
    };
    struct File {
        std::size_t dir;
        std::string name;
    };

    void mark_dir(const Dir& d, std::vector<bool>& changed) const;
    void forget(int wd);

    int fd_ = -1;
    std::vector<Dir> dirs_;
    std::vector<File> files_;
    // Two paths may name one directory (through a symlink); inotify then returns one wd.
    std::unordered_map<int, std::vector<std::size_t>> by_wd_;
};

}  // namespace yuxi::config::agent
