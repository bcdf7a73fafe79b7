// The decoders of outside input, driven as the agent drives them, with their promises
// checked (decoders.hpp).
#include "decoders.hpp"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "agent/ops/http_server.hpp"
#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"
#include "agent/postgres/catchup_page.hpp"
#include "core/agent_report.hpp"
#include "core/change_message.hpp"
#include "core/database_url.hpp"
#include "core/history_record.hpp"
#include "core/signing.hpp"
#include "core/toml_json.hpp"
#include "core/value_schema.hpp"

namespace yuxi::config::harness {
namespace {

using agent::CatchupRow;

[[noreturn]] void broken(const char* decoder, const char* promise) {
    std::fprintf(stderr, "decoder %s broke its promise: %s\n", decoder, promise);
    std::abort();
}

template <class T, class R>
Outcome outcome(const char* decoder, const Decoded<T, R>& d) {
    if (d) {
        return Outcome::accepted;
    }
    if constexpr (std::is_same_v<R, std::string>) {
        if (d.reason().empty()) {
            broken(decoder, "a refusal has a reason");
        }
    }
    return Outcome::refused;
}

bool same(const std::vector<Change>& a, const std::vector<Change>& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].ns != b[i].ns || a[i].key != b[i].key || a[i].value != b[i].value ||
            a[i].category != b[i].category) {
            return false;
        }
    }
    return true;
}

Outcome batch(std::string_view input) {
    const auto d = decode_batch(input, kMaxStreamEntryBytes);
    if (d) {
        if (d->prev >= d->revision || d->revision > kMaxRevision) {
            broken("batch", "prev < revision <= 2^63-1");
        }
        const auto again = decode_batch(encode_batch(*d), kMaxStreamEntryBytes);
        if (!again || again->revision != d->revision || again->prev != d->prev ||
            again->wakeup != d->wakeup || again->fence != d->fence ||
            !same(again->entries, d->entries)) {
            broken("batch", "a decoded batch survives encoding unchanged");
        }
    }
    if (input.size() <= kMaxMessageBytes && decode_batch(input, kMaxMessageBytes).ok() != d.ok()) {
        broken("batch", "the size limit is the only difference between pub/sub and stream");
    }
    return outcome("batch", d);
}

Outcome snapshot(std::string_view input) {
    const auto d = decode_snapshot(input);
    if (d) {
        const auto again = decode_snapshot(encode_snapshot(*d));
        if (!again || again->revision != d->revision || !same(again->entries, d->entries)) {
            broken("snapshot", "a decoded snapshot survives encoding unchanged");
        }
        for (const Change& c : d->entries) {
            if (!c.value) {
                broken("snapshot", "every entry has a value");
            }
        }
    }
    return outcome("snapshot", d);
}

// Redis never sends a reply of a billion elements for our keys; hiredis would try to
// allocate it (that is the Redis server's word to trust, not a document's).
bool declares_huge(std::string_view resp) {
    for (std::size_t i = 0; i + 1 < resp.size(); ++i) {
        if ((resp[i] == '*' || resp[i] == '$') && i + 8 < resp.size()) {
            std::size_t digits = 0;
            while (i + 1 + digits < resp.size() && resp[i + 1 + digits] >= '0' &&
                   resp[i + 1 + digits] <= '9') {
                ++digits;
            }
            if (digits > 6) {
                return true;
            }
        }
    }
    return false;
}

Outcome stream(std::string_view input) {
    if (declares_huge(input)) {
        return Outcome::refused;
    }
    std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(),
                                                                    &redisReaderFree);
    void* raw = nullptr;
    if (redisReaderFeed(reader.get(), input.data(), input.size()) != REDIS_OK ||
        redisReaderGetReply(reader.get(), &raw) != REDIS_OK || raw == nullptr) {
        return Outcome::refused;  // not a reply at all: hiredis drops the connection
    }
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(static_cast<redisReply*>(raw),
                                                                  &freeReplyObject);
    const auto page = decode_stream_page(reply.get());
    if (page) {
        for (const StreamEntry& e : *page) {
            if (e.batch && e.batch->revision != e.id_revision) {
                broken("stream", "an accepted entry's ID and document agree");
            }
            if (!e.batch && e.batch.reason().empty()) {
                broken("stream", "a refused entry has a reason");
            }
        }
    }
    return outcome("stream", page);
}

Outcome agent_report(std::string_view input) {
    const auto nl = input.find('\n');
    const std::string_view field = input.substr(0, nl);
    const std::string_view value = nl == std::string_view::npos ? "" : input.substr(nl + 1);
    const auto pod = decode_pod_name(field);
    const auto report = decode_agent_report(value);
    if (report) {
        const auto again = decode_agent_report(encode_agent_report(*report));
        if (!again || again->revision != report->revision ||
            again->heartbeat_ms != report->heartbeat_ms || again->role != report->role ||
            again->state != report->state || again->segment != report->segment) {
            broken("agent_report", "a decoded report survives encoding unchanged");
        }
    }
    if (pod) {
        for (const char c : *pod) {
            if (c < 0x20 || c > 0x7e) {
                broken("agent_report", "a pod name is printable");
            }
        }
    }
    (void)outcome("agent_report", pod);
    (void)outcome("agent_report", report);
    return pod && report ? Outcome::accepted : Outcome::refused;
}

Outcome history(std::string_view input) {
    const auto record = decode_history_record(input);
    if (record) {
        const auto again = decode_history_record(encode_history_record(*record));
        if (!again || again->id != record->id || again->revision != record->revision ||
            again->first_lost != record->first_lost) {
            broken("history", "a decoded record survives encoding unchanged");
        }
    }
    return outcome("history", record);
}

Outcome notify(std::string_view input) {
    const auto n = agent::notify_revision(input);
    if (n && (*n == 0 || *n > kMaxRevision)) {
        broken("notify", "a revision is 1..2^63-1");
    }
    return n ? Outcome::accepted : Outcome::refused;
}

// libpq's text form: rows on lines, fields separated by tabs, \N for NULL.
std::vector<CatchupRow> rows_of(std::string_view input) {
    std::vector<CatchupRow> rows;
    while (!input.empty()) {
        const auto nl = input.find('\n');
        std::string_view line = input.substr(0, nl);
        CatchupRow row;
        for (std::size_t c = 0; c < row.size(); ++c) {
            const auto tab = line.find('\t');
            const std::string_view f = line.substr(0, tab);
            if (f != "\\N" && (c == 0 || !line.empty() || tab != std::string_view::npos)) {
                row[c] = f;
            }
            line = tab == std::string_view::npos ? std::string_view() : line.substr(tab + 1);
        }
        rows.push_back(row);
        input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
    }
    return rows;
}

Outcome catchup(std::string_view input) {
    const auto page = agent::decode_catchup_page(rows_of(input));
    if (page) {
        for (std::size_t i = 1; i < page->rows.size(); ++i) {
            if (page->rows[i - 1].revision >= page->rows[i].revision) {
                broken("catchup", "rows come sorted by revision, each once");
            }
        }
    }
    return outcome("catchup", page);
}

// The agent's HTTP server on a loop of its own, fed each input through a socket pair.
class HttpHarness {
  public:
    HttpHarness()
        : base_(event_base_new(), &event_base_free),
          metrics_("fuzz"),
          server_(base_.get(), metrics_, [] {
              agent::ModeStatus s;
              s.ready = true;
              return s;
          }) {
        // An abstract Unix socket (a leading NUL: no file), unique to this process.
        address_.sun_family = AF_UNIX;
        const std::string name = "yuxi-http-harness-" + std::to_string(::getpid());
        std::copy(name.begin(), name.end(), address_.sun_path + 1);
        const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listener < 0 ||
            ::bind(listener, reinterpret_cast<const sockaddr*>(&address_), sizeof address_) != 0 ||
            ::listen(listener, 16) != 0) {
            std::perror("http harness: unix socket");
            std::abort();
        }
        server_.accept_on(listener);
    }

    // The server's answer (its first bytes), empty if it closed without one.
    std::string serve(std::string_view input) {
        std::string answer;
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return answer;
        }
        const int size = 1 << 20;
        (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&address_), sizeof address_) != 0) {
            std::perror("http harness: connect");
            std::abort();
        }
        std::size_t sent = 0;
        while (sent < input.size()) {
            const ssize_t n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) {
                break;  // the rest does not fit: the server sees a truncated request
            }
            sent += static_cast<std::size_t>(n);
        }
        ::shutdown(fd, SHUT_WR);
        char buf[65536];
        // Bounded: a request is answered or refused within a few turns of the loop.
        for (int turn = 0; turn < 200; ++turn) {
            event_base_loop(base_.get(), EVLOOP_NONBLOCK);
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n == 0) {
                break;  // the server closed the connection
            }
            if (n > 0 && answer.size() < 64) {
                answer.append(buf, static_cast<std::size_t>(n));
            }
        }
        ::close(fd);
        // Let the server see the close, so that inputs do not pile up connections.
        for (int turn = 0; turn < 10 && server_.connections() > 0; ++turn) {
            event_base_loop(base_.get(), EVLOOP_NONBLOCK);
        }
        return answer;
    }

  private:
    std::unique_ptr<event_base, decltype(&event_base_free)> base_;
    agent::Metrics metrics_;
    agent::HttpServer server_;
    sockaddr_un address_{};
};

// Accepted: the server answered 200 first; refused: an error status, or no answer.
Outcome http(std::string_view input) {
    static HttpHarness harness;
    const std::string answer = harness.serve(input);
    return answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
               ? Outcome::accepted
               : Outcome::refused;
}

Outcome toml(std::string_view input) {
    const auto doc = parse_toml_document(input, "fuzz.toml");
    if (doc) {
        const auto again = parse_json_document(canonical(*doc), "again.json");
        if (!again || *again != *doc) {
            broken("toml", "a converted document is JSON that parses back equal");
        }
    } else if (doc.reason().message.empty()) {
        broken("toml", "a refusal has a reason");
    }
    return doc ? Outcome::accepted : Outcome::refused;
}

Outcome json_file(std::string_view input) {
    const auto doc = parse_json_document(input, "fuzz.json");
    if (doc) {
        const auto again = parse_json_document(canonical(*doc), "again.json");
        if (!again || *again != *doc) {
            broken("json_file", "a parsed document parses back equal");
        }
    } else if (doc.reason().message.empty()) {
        broken("json_file", "a refusal has a reason");
    }
    return doc ? Outcome::accepted : Outcome::refused;
}

Outcome database_url(std::string_view input) {
    const auto conninfo = database_conninfo(input, "fuzz");
    (void)redact_database_url(input);
    return outcome("database_url", conninfo);
}

Outcome options(std::string_view input) {
    std::vector<std::string> args;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= input.size(); ++i) {
        if (i == input.size() || input[i] == '\0') {
            args.emplace_back(input.substr(start, i - start));
            start = i + 1;
        }
    }
    std::vector<std::string_view> views(args.begin(), args.end());
    try {
        (void)agent::parse_options(views, [](std::string_view) { return std::nullopt; });
        return Outcome::accepted;
    } catch (const agent::OptionsError& e) {
        if (std::string_view(e.what()).empty()) {
            broken("options", "a refusal has a reason");
        }
        return Outcome::refused;
    }
    // Any other exception escapes: libFuzzer reports it as a crash.
}

// The harness's key: base64 of "yuxi-config-test-signing-key-001" (make_seeds.py's KEY).
Outcome envelope(std::string_view input) {
    static const KeyRing ring(
        *SigningKey::from_base64("eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDE=", "harness"));
    const auto document = ring.verify(input);
    if (document && ring.sign(*document) != input) {
        broken("envelope", "a verified envelope is the one signing its document makes");
    }
    return outcome("envelope", document);
}

// The value schemas' mirror document (metadata 'yuxi_config.value_schemas'): it reaches the
// agents through PostgreSQL, Redis and the L2 snapshot. Compiling it and validating values
// against what compiled must both be total.
Outcome value_schemas(std::string_view input) {
    const auto compiled = ValueSchemas::from_document(input);
    if (compiled) {
        for (const SchemaRule& r : compiled->rules()) {
            for (const char* value : {"null", "0", "-1.5e300", "\"x\"", "[1,1,{}]",
                                      "{\"models\":[\"a\"],\"name\":{}}", "not json"}) {
                (void)compiled->validate_text(r.ns, r.pattern, value);
            }
        }
        const auto again = ValueSchemas::from_document(encode_value_schemas(compiled->rules()));
        if (!again || again->rules().size() != compiled->rules().size()) {
            broken("value_schemas", "a compiled document survives encoding");
        }
    }
    return outcome("value_schemas", compiled);
}

struct Entry {
    std::string_view name;
    Outcome (*run)(std::string_view);
};

constexpr std::array<Entry, 14> kDecoders = {{
    {"batch", batch},
    {"snapshot", snapshot},
    {"stream", stream},
    {"agent_report", agent_report},
    {"history", history},
    {"notify", notify},
    {"catchup", catchup},
    {"http", http},
    {"toml", toml},
    {"json_file", json_file},
    {"database_url", database_url},
    {"options", options},
    {"envelope", envelope},
    {"value_schemas", value_schemas},
}};

}  // namespace

const std::vector<std::string_view>& decoder_names() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> out;
        for (const Entry& e : kDecoders) {
            out.push_back(e.name);
        }
        return out;
    }();
    return names;
}

Outcome run_decoder(std::string_view name, std::string_view input) {
    for (const Entry& e : kDecoders) {
        if (e.name == name) {
            return e.run(input);
        }
    }
    std::fprintf(stderr, "no decoder named %.*s\n", static_cast<int>(name.size()), name.data());
    std::abort();
}

}  // namespace yuxi::config::harness
