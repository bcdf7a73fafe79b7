// File mode: files → segment, driven by inotify events, a debounce timer and a heartbeat.
#include "agent/file/file_mode.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

#include "agent/ops/rejections.hpp"
#include "core/event_loop.hpp"
#include "core/text.hpp"

namespace yuxi::config::agent {
namespace {

const char* ns_name(Namespace ns) {
    return ns == Namespace::config ? "config" : "metadata";
}

std::vector<std::string> file_paths(const FileSource& source) {
    std::vector<std::string> out;
    for (const SourceFile& f : source.files()) {
        out.push_back(f.path);
    }
    return out;
}

}  // namespace

FileMode::FileMode(const Options& options, event_base* base)
    : options_(options),
      base_(base),
      source_(options),
      watcher_(file_paths(source_)),
      publisher_(writer_options(options), base, [this] { tick(); }),
      dirty_(source_.files().size(), false) {}

FileMode::~FileMode() = default;

void FileMode::load_schemas(bool at_start) {
    if (options_.value_schema_file.empty()) {
        return;
    }
    const std::string& path = options_.value_schema_file;
    std::string why;
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
        why = "cannot be read";
    } else if (auto rules = rules_from_file_text(text.str()); !rules) {
        why = rules.reason();
    } else if (auto compiled = ValueSchemas::compile(std::move(*rules)); !compiled) {
        why = compiled.reason();
    } else {
        schemas_ = std::move(*compiled);
        spdlog::info("value schemas: {} rule(s) from {}", schemas_.rules().size(), path);
        return;
    }
    if (at_start) {
        throw OptionsError("--value-schema " + path + ": " + why);
    }
    spdlog::error("value schemas {}: {}; keeping the last good ones", path, why);
}

void FileMode::note_refusals(const Plan& plan) {
    held_back_ = plan.refused.size();
    for (const Refusal& r : plan.refused) {
        ++rejected_[std::string(r.kind)];
        ++source_.stats().refused_values;
        spdlog::error(
            "{} key '{}' refused: {}; {}", ns_name(r.key.ns), printable(r.key.key), r.reason,
            published_.contains(r.key) ? "readers keep its last good value" : "not published");
    }
}

void FileMode::start() {
    load_schemas(true);
    // Watch before reading, so that a change made while we read is an event, not lost.
    (void)watcher_.watch_missing();
    for (std::size_t i = 0; i < source_.files().size(); ++i) {
        (void)source_.reload(i);
    }
    ++source_.stats().reloads;

    const Plan plan = plan_changes({}, source_.entries(), options_.max_value_bytes, schemas_);
    note_refusals(plan);
    const SourceState initial =
        source_.healthy() && plan.refused.empty() ? SourceState::ok : SourceState::stale;
    const std::uint64_t revision = SegmentWriter::existing_revision(options_.segment) + 1;
    std::vector<Rejected> rejected;
    publisher_.create(plan.changes, revision, initial, &rejected);
    for (const Rejected& r : rejected) {
        ++source_.stats().refused_values;
        spdlog::error("key '{}' refused by the segment: {}", r.key, r.reason);
    }
    sync_published(plan.changes);
    ++source_.stats().revisions_published;
    source_.stats().entries_written += published_.size();
    spdlog::info("segment '{}': published revision {} with {} entries", options_.segment, revision,
                 published_.size());
    update_state(plan.refused.empty() && rejected.empty());
    publisher_.start();

    inotify_event_.reset(
        event_new(base_, watcher_.fd(), EV_READ | EV_PERSIST, &FileMode::on_inotify, this));
    debounce_event_.reset(evtimer_new(base_, &FileMode::on_debounce, this));
    if (!inotify_event_ || !debounce_event_) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: event_new");
    }
    if (event_add(inotify_event_.get(), nullptr) != 0) {
        throw std::system_error(EINVAL, std::generic_category(), "libevent: event_add");
    }
}

void FileMode::reload_all() {
    spdlog::info("reloading every file");
    load_schemas(false);
    std::vector<std::size_t> all(dirty_.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        all[i] = i;
    }
    mark(all);
}

void FileMode::stop() noexcept {
    inotify_event_.reset();
    debounce_event_.reset();
    publisher_.stop();
}

void FileMode::on_inotify(evutil_socket_t, short, void* self) {
    guarded("file", [&] {
        auto& me = *static_cast<FileMode*>(self);
        const InotifyWatcher::Events ev = me.watcher_.read_events();
        if (ev.overflow) {
            ++me.source_.stats().watch_overflows;
            spdlog::warn("inotify queue overflowed; re-reading every file");
        }
        me.mark(ev.changed);
    });
}

void FileMode::on_debounce(evutil_socket_t, short, void* self) {
    guarded("file", [&] {
        auto& me = *static_cast<FileMode*>(self);
        me.debounce_armed_ = false;
        me.reload_dirty();
    });
}

void FileMode::tick() {
    mark(watcher_.watch_missing());
    if (publish_failed_ && !debounce_armed_) {
        publish();
    }
}

void FileMode::mark(const std::vector<std::size_t>& files) {
    for (const std::size_t f : files) {
        dirty_.at(f) = true;
    }
    if (files.empty() || debounce_armed_ || !debounce_event_) {
        return;
    }
    const timeval tv = to_timeval(kDebounce);
    if (evtimer_add(debounce_event_.get(), &tv) == 0) {
        debounce_armed_ = true;
    } else {
        spdlog::error("libevent: cannot arm the reload timer; reloading now");
        reload_dirty();
    }
}

void FileMode::reload_dirty() {
    ++source_.stats().reloads;
    for (std::size_t i = 0; i < dirty_.size(); ++i) {
        if (dirty_[i]) {
            dirty_[i] = false;
            (void)source_.reload(i);
        }
    }
    publish();
}

void FileMode::publish() {
    const Plan plan =
        plan_changes(published_, source_.entries(), options_.max_value_bytes, schemas_);
    bool all_published = plan.refused.empty();
    note_refusals(plan);
    publish_failed_ = false;
    if (!plan.changes.empty()) {
        const std::uint64_t revision = publisher_.revision() + 1;
        try {
            const ApplyResult result = publisher_.apply(plan.changes, revision);
            for (const Rejected& r : result.rejected) {
                ++source_.stats().refused_values;
                spdlog::error("key '{}' refused by the segment: {}", r.key, r.reason);
            }
            all_published = all_published && result.rejected.empty();
            ++source_.stats().revisions_published;
            source_.stats().entries_written += result.applied;
            std::size_t deletes = 0;
            for (const Change& c : plan.changes) {
                deletes += c.value ? 0 : 1;
                spdlog::debug("revision {}: {} {} '{}'", revision, c.value ? "set" : "delete",
                              ns_name(c.ns), c.key);
            }
            spdlog::info("published revision {}: {} set, {} deleted{}", revision,
                         plan.changes.size() - deletes, deletes,
                         result.compacted ? " (segment compacted)" : "");
        } catch (const std::exception& e) {
            ++source_.stats().publish_errors;
            all_published = false;
            publish_failed_ = true;
            spdlog::error("cannot publish revision {}: {}; readers keep revision {}", revision,
                          e.what(), publisher_.revision());
        }
        sync_published(plan.changes);
    }
    update_state(all_published);
    publisher_.notify();
}

// Reads back from the writer what it holds for the keys of `changes`, so `published_` is
// exactly the segment even when the writer refused or failed part of a batch.
void FileMode::sync_published(const std::vector<Change>& changes) {
    for (const Change& c : changes) {
        EntryKey k{c.ns, c.key};
        if (const auto v = publisher_.writer().get(c.ns, c.key)) {
            published_[std::move(k)] = std::string(*v);
        } else {
            published_.erase(k);
        }
    }
}

void FileMode::update_state(bool all_published) {
    const SourceState state =
        source_.healthy() && all_published ? SourceState::ok : SourceState::stale;
    if (publisher_.set_state(state)) {
        if (state == SourceState::ok) {
            spdlog::info("source state: ok");
        } else {
            spdlog::warn("source state: stale (readers keep the last good values)");
        }
    }
}

ModeStatus FileMode::status() const {
    ModeStatus s;
    s.source = "file";
    s.source_up = source_.healthy();
    // A bad edit leaves the agent ready: it serves the last good values (state `stale`),
    // and the same edit reaches every pod, so failing readiness would take them all out.
    s.ready = publisher_.published();
    publisher_.describe(s);
    if (!s.ready) {
        s.not_ready = "the files are not published yet";
    }
    const FileSourceStats& st = source_.stats();
    s.errors = {{"syntax", st.syntax_errors},          {"conversion", st.conversion_errors},
                {"missing", st.missing_files},         {"read", st.read_errors},
                {"refused", st.refused_values},        {"publish", st.publish_errors},
                {"watch_overflow", st.watch_overflows}};
    for (const auto& [kind, n] : rejected_) {
        s.rejected_values.emplace_back(kind, n);
    }
    s.rejected_keys = held_back_;
    return s;
}

}  // namespace yuxi::config::agent
