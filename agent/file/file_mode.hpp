// File mode (CONFIG_MODE=file): keeps the segment equal to the TOML and JSON files, on one
// libevent loop.
//
// Start: watch the directories, read every file, publish the entries as one revision
// (the revision already in the segment + 1, so a restarted agent never moves readers
// backwards). Then, on inotify events, debounced for kDebounce so that a burst (an editor's
// write, rename and chmod) is one reload: re-read the files that changed, diff the entries
// against what was last published, and publish only the keys that changed, were added or
// were removed, as the next revision; nothing when nothing changed. A heartbeat timer
// beats every second and retries directories that were not there.
//
// Source state (what readers see in Health): `ok` while every file read successfully and
// every key was published; `stale` while a file is missing or bad or a key is refused
// (readers keep the last good values); `stopped` after stop(). With --value-schema, a value
// that breaks its key's JSON Schema is refused like one over --max-value-bytes.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/file/file_source.hpp"
#include "agent/file/inotify_watcher.hpp"
#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"
#include "agent/segment/publisher.hpp"
#include "core/event_loop.hpp"

namespace yuxi::config::agent {

inline constexpr std::chrono::milliseconds kDebounce{50};

class FileMode {
  public:
    // Registers nothing yet; `base` must outlive this object.
    FileMode(const Options& options, event_base* base);
    ~FileMode();
    FileMode(const FileMode&) = delete;
    FileMode& operator=(const FileMode&) = delete;

    // Reads the files, creates the segment and registers the loop's events. Throws
    // WriterError if another agent holds the segment or it cannot be created, and
    // std::system_error if inotify or libevent fail.
    void start();

    // Re-reads every file at the next debounce (SIGHUP).
    void reload_all();

    // Marks the segment `stopped` and wakes its readers; the segment stays readable.
    void stop() noexcept;

    const FileSourceStats& stats() const noexcept { return source_.stats(); }

    // Where to report applied batches and heartbeats; null (the default) reports nothing.
    void set_metrics(Metrics* metrics) noexcept { publisher_.set_metrics(metrics); }
    // For /readyz and /metrics: ready once the files are published.
    ModeStatus status() const;

  private:
    static void on_inotify(evutil_socket_t fd, short what, void* self);
    static void on_debounce(evutil_socket_t fd, short what, void* self);
    void tick();

    void mark(const std::vector<std::size_t>& files);
    void reload_dirty();
    void publish();
    void sync_published(const std::vector<Change>& changes);
    void update_state(bool all_published);
    // Reads --value-schema; at start a file that cannot be used throws OptionsError, later
    // (SIGHUP) the last good schemas stay.
    void load_schemas(bool at_start);
    void note_refusals(const Plan& plan);

    Options options_;
    event_base* base_;
    FileSource source_;
    InotifyWatcher watcher_;
    Publisher publisher_;
    EntryMap published_;  // what the segment holds: the writer's view, mirrored
    ValueSchemas schemas_;
    std::map<std::string, std::uint64_t, std::less<>> rejected_;  // by kind, since start
    std::size_t held_back_ = 0;                                   // keys refused by the last plan
    std::vector<bool> dirty_;
    bool debounce_armed_ = false;
    bool publish_failed_ = false;  // retried on the next tick (the segment may have room)
    EventPtr inotify_event_;
    EventPtr debounce_event_;
};

}  // namespace yuxi::config::agent
