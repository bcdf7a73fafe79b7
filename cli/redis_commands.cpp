// lock, agents and --wait-all: yuxi-configctl's uses of Redis.
#include "cli/redis_commands.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/database.hpp"
#include "core/agent_report.hpp"
#include "core/change_message.hpp"
#include "core/host_port.hpp"
#include "core/redis_keys.hpp"
#include "core/signing.hpp"
#include "core/text.hpp"
#include "lock/redis_connection.hpp"
#include "yuxi/config/lock.hpp"

extern char** environ;

namespace yuxi::config::cli {
namespace {

using nlohmann::json;
using Seconds = std::chrono::duration<double>;
using Clock = std::chrono::steady_clock;

std::string quote(std::string_view s) {
    return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::chrono::milliseconds millis(Seconds s) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(s);
}

RedisEndpoint endpoint(const CommandLine& cl) {
    RedisEndpoint e;
    try {
        e = RedisEndpoint::from_env();
    } catch (const std::invalid_argument& x) {
        throw UsageError(x.what());
    }
    if (const auto h = cl.value("--redis-host")) {
        e.host = *h;
        e.sentinels.clear();  // an explicit host wins over REDIS_SENTINELS
    }
    if (const auto p = cl.value("--redis-port")) {
        e.port = static_cast<std::uint16_t>(parse_revision("--redis-port", *p));
    }
    if (const auto list = cl.value("--redis-sentinels")) {
        if (!parse_host_list(*list, 26379)) {
            throw UsageError("option '--redis-sentinels' needs host:port,...: " +
                             parse_host_list(*list, 26379).reason());
        }
        e.sentinels = {*list};
    }
    if (const auto master = cl.value("--redis-sentinel-master")) {
        e.sentinel_master = *master;
    }
    return e;
}

std::string shown(const RedisEndpoint& e) {
    if (e.uses_sentinel()) {
        return "Redis master '" + e.sentinel_master + "' of the Sentinels " + e.sentinels.front();
    }
    return "Redis at " + e.host + ":" + std::to_string(e.port);
}

CommandError unreachable(const RedisEndpoint& e, const LockError& x, std::string_view consequence) {
    return CommandError(Exit::unavailable,
                        "cannot use " + shown(e) + " (" + to_string(x.kind()) + "): " + x.what() +
                            "; check REDIS_HOST/REDIS_PORT/REDIS_PASSWORD or REDIS_SENTINELS (or "
                            "--redis-host, --redis-port)" +
                            std::string(consequence));
}

// ---------------------------------------------------------------------------------------
// The agents' reports

// One agent as the commands show it: its report (core/agent_report.hpp) and its pod.
struct AgentView {
    std::string pod;
    std::string role;
    std::string state;
    std::string segment;
    std::uint64_t revision = 0;
    std::int64_t heartbeat_age_ms = 0;
    bool live = false;
};

std::int64_t now_epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The keys that verify the agents' reports, or null for a fleet that runs unsigned
// (--insecure-redis). The agents sign every report; without a key none can be trusted.
std::unique_ptr<KeyRing> fleet_keys(const CommandLine& cl) {
    if (cl.has("--insecure-redis") || env("YUXI_CONFIG_INSECURE_REDIS").has_value()) {
        return nullptr;
    }
    const auto key_of = [](std::optional<std::string> file, const char* file_var,
                           const char* text_var) -> std::optional<SigningKey> {
        std::string origin = file ? "--signing-key-file" : file_var;
        if (!file) {
            file = env(file_var);
        }
        std::optional<std::string> text;
        if (file) {
            std::ifstream in(*file, std::ios::binary);
            if (!in) {
                throw UsageError(origin + ": cannot read " + *file);
            }
            text.emplace(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
            origin = *file;
        } else if (auto v = env(text_var)) {
            text = std::move(v);
            origin = text_var;
        }
        if (!text) {
            return std::nullopt;
        }
        auto key = SigningKey::from_base64(*text, origin);
        if (!key) {
            throw UsageError(key.reason());
        }
        return std::move(*key);
    };
    auto current = key_of(cl.value("--signing-key-file"), "YUXI_CONFIG_SIGNING_KEY_FILE",
                          "YUXI_CONFIG_SIGNING_KEY");
    if (!current) {
        throw UsageError(
            "the agents sign their reports: give the fleet's key with --signing-key-file or "
            "YUXI_CONFIG_SIGNING_KEY (or --insecure-redis for a fleet that runs unsigned)");
    }
    auto previous = key_of(std::nullopt, "YUXI_CONFIG_SIGNING_KEY_PREVIOUS_FILE",
                           "YUXI_CONFIG_SIGNING_KEY_PREVIOUS");
    return std::make_unique<KeyRing>(std::move(*current), std::move(previous));
}

// The field and value of one hash entry, or why they are not an agent's.
Decoded<AgentView> parse_report(std::string_view field, std::string_view text,
                                std::chrono::milliseconds stale_after, const KeyRing* keys) {
    auto pod = decode_pod_name(field);
    if (!pod) {
        return refuse(pod.reason());
    }
    const auto document = open_document(text, keys);
    if (!document) {
        return refuse(document.reason());
    }
    auto report = decode_agent_report(*document);
    if (!report) {
        return refuse(report.reason());
    }
    AgentView r;
    r.pod = std::move(*pod);
    r.role = report->role;
    r.state = report->state;
    r.segment = report->segment;
    r.revision = report->revision;
    const auto beat = static_cast<std::int64_t>(
        std::min<std::uint64_t>(report->heartbeat_ms, std::numeric_limits<std::int64_t>::max()));
    r.heartbeat_age_ms = std::max<std::int64_t>(0, now_epoch_ms() - beat);
    r.live = r.heartbeat_age_ms < stale_after.count();
    return r;
}

// HGETALL of the hash, sorted by pod. A value that is not a report is left out with a
// warning (once per field per run).
std::vector<AgentView> read_agents(detail::RedisConnection& redis,
                                   std::chrono::milliseconds stale_after, const KeyRing* keys,
                                   std::ostream& err, std::set<std::string>& warned) {
    const auto reply = redis.command({"HGETALL", kAgentsHash});
    std::vector<AgentView> out;
    if (reply->type != REDIS_REPLY_ARRAY) {
        return out;
    }
    for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply* f = reply->element[i];
        const redisReply* v = reply->element[i + 1];
        const std::string_view field =
            f != nullptr && f->str != nullptr ? std::string_view(f->str, f->len) : "";
        const std::string_view value =
            v != nullptr && v->str != nullptr ? std::string_view(v->str, v->len) : "";
        auto r = parse_report(field, value, stale_after, keys);
        if (r) {
            out.push_back(std::move(*r));
        } else if (warned.insert(std::string(field)).second) {
            err << "yuxi-configctl: warning: ignoring " << kAgentsHash << " field \""
                << printable(field, 64) << "\": " << r.reason() << "\n";
        }
    }
    std::sort(out.begin(), out.end(),
              [](const AgentView& a, const AgentView& b) { return a.pod < b.pod; });
    return out;
}

std::chrono::milliseconds stale_after(const CommandLine& cl) {
    const auto v = cl.value("--stale-after");
    return millis(Seconds(v ? parse_seconds("--stale-after", *v) : 10.0));
}

// The revision lag is measured against: the database's when it can be read, else the
// highest an agent reports.
std::pair<std::uint64_t, bool> reference_revision(const CommandLine& cl,
                                                  const std::vector<AgentView>& agents,
                                                  std::ostream& err) {
    std::uint64_t highest = 0;
    for (const AgentView& a : agents) {
        highest = std::max(highest, a.revision);
    }
    try {
        Database db(database_target(cl));
        return {database_revision(db), true};
    } catch (const UsageError&) {
        return {highest, false};  // no database configured: not an error for `agents`
    } catch (const CommandError& e) {
        err << "yuxi-configctl: warning: " << e.what() << "; lag is against the highest revision "
            << "an agent reports\n";
        return {highest, false};
    }
}

std::string age_text(std::int64_t ms) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000.0 << "s";
    return s.str();
}

void print_agents(const std::vector<AgentView>& agents, std::uint64_t reference, bool from_db,
                  bool as_json, std::ostream& out) {
    const auto lag = [&](const AgentView& a) {
        return reference > a.revision ? reference - a.revision : 0;
    };
    if (as_json) {
        out << "{\"reference_revision\":" << reference << ",\"reference\":\""
            << (from_db ? "database" : "agents") << "\",\"agents\":[";
        for (std::size_t i = 0; i < agents.size(); ++i) {
            const AgentView& a = agents[i];
            out << (i != 0 ? "," : "") << "{\"pod\":" << quote(a.pod)
                << ",\"role\":" << quote(a.role) << ",\"revision\":" << a.revision
                << ",\"lag\":" << lag(a) << ",\"heartbeat_age_ms\":" << a.heartbeat_age_ms
                << ",\"state\":" << quote(a.state) << ",\"segment\":" << quote(a.segment)
                << ",\"live\":" << (a.live ? "true" : "false") << '}';
        }
        out << "]}\n";
        return;
    }
    std::size_t width = 3;
    for (const AgentView& a : agents) {
        width = std::max(width, a.pod.size());
    }
    const auto row = [&](std::string_view pod, std::string_view role, std::string_view rev,
                         std::string_view lag_text, std::string_view age, std::string_view state,
                         std::string_view live) {
        out << std::left << std::setw(static_cast<int>(width) + 2) << pod << std::setw(10) << role
            << std::setw(10) << rev << std::setw(8) << lag_text << std::setw(11) << age
            << std::setw(10) << state << live << '\n';
    };
    row("POD", "ROLE", "REVISION", "LAG", "HEARTBEAT", "STATE", "LIVE");
    std::size_t live = 0;
    for (const AgentView& a : agents) {
        live += a.live ? 1 : 0;
        row(a.pod, a.role, std::to_string(a.revision), std::to_string(lag(a)),
            age_text(a.heartbeat_age_ms), a.state, a.live ? "yes" : "no");
    }
    out << agents.size() << " agent(s), " << live << " live; lag against "
        << (from_db ? "the database's revision " : "the highest revision reported ") << reference
        << '\n';
}

// ---------------------------------------------------------------------------------------
// lock

std::atomic<pid_t> g_child{0};
static_assert(std::atomic<pid_t>::is_always_lock_free);  // used by a signal handler

extern "C" void forward_signal(int sig) {
    const pid_t pid = g_child.load();
    if (pid > 0) {
        ::kill(pid, sig);
    }
}

void forward_signals() {
    struct sigaction sa {};
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
        ::sigaction(sig, &sa, nullptr);
    }
}

// CMD with our environment plus YUXI_LOCK_NAME and YUXI_LOCK_FENCING_TOKEN; returns its pid,
// or an errno.
std::pair<pid_t, int> spawn(const std::vector<std::string>& cmd, const std::string& name,
                            std::uint64_t token) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view v(*e);
        if (!v.starts_with("YUXI_LOCK_NAME=") && !v.starts_with("YUXI_LOCK_FENCING_TOKEN=")) {
            env.emplace_back(v);
        }
    }
    env.push_back("YUXI_LOCK_NAME=" + name);
    env.push_back("YUXI_LOCK_FENCING_TOKEN=" + std::to_string(token));
    std::vector<char*> envp;
    for (std::string& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    std::vector<std::string> args = cmd;
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);

    // The child starts with no blocked signals and default dispositions (our handlers and
    // the lock's SIGPIPE blocking are ours, not CMD's).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    return {rc == 0 ? pid : -1, rc};
}

int wait_child(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return 127;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

void check_redis(const CommandLine& cl) {
    const RedisEndpoint e = endpoint(cl);
    try {
        detail::RedisConnection redis(e);
        (void)redis.command({"PING"});
    } catch (const LockError& x) {
        throw unreachable(e, x, "; nothing was written");
    }
}

Exit wait_for_all_agents(const CommandLine& cl, std::uint64_t revision, Seconds timeout,
                         std::ostream& err) {
    const RedisEndpoint e = endpoint(cl);
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
    const std::unique_ptr<KeyRing> keys = fleet_keys(cl);
    detail::RedisConnection redis(e);
    std::set<std::string> warned;
    for (bool first = true;; first = false) {
        std::vector<AgentView> agents;
        try {
            agents = read_agents(redis, stale_after(cl), keys.get(), err, warned);
        } catch (const LockError& x) {
            throw unreachable(
                e, x, "; the write is committed (revision " + std::to_string(revision) + ")");
        }
        std::erase_if(agents, [](const AgentView& a) { return !a.live; });
        if (agents.empty() && first) {
            err << "yuxi-configctl: no live agent reports to " << shown(e) << " (" << kAgentsHash
                << "); nothing to wait for\n";
            return Exit::ok;
        }
        std::erase_if(agents, [&](const AgentView& a) { return a.revision >= revision; });
        if (agents.empty()) {
            return Exit::ok;
        }
        if (Clock::now() >= deadline) {
            err << "yuxi-configctl: the write is committed (revision " << revision
                << "), but after " << timeout.count() << " s " << agents.size()
                << " live agent(s) have not applied it:";
            for (const AgentView& a : agents) {
                err << ' ' << a.pod << " (revision " << a.revision << ", state " << a.state << ")";
            }
            err << "; see yuxi-configctl agents\n";
            return Exit::timeout;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

Exit run_agents(const CommandLine& cl, std::ostream& out, std::ostream& err) {
    const RedisEndpoint e = endpoint(cl);
    const std::unique_ptr<KeyRing> keys = fleet_keys(cl);
    std::vector<AgentView> agents;
    try {
        detail::RedisConnection redis(e);
        std::set<std::string> warned;
        agents = read_agents(redis, stale_after(cl), keys.get(), err, warned);
    } catch (const LockError& x) {
        throw unreachable(e, x, "");
    }
    const auto [reference, from_db] = reference_revision(cl, agents, err);
    print_agents(agents, reference, from_db, cl.has("--json"), out);
    return Exit::ok;
}

Exit run_keygen(std::ostream& out) {
    out << SigningKey::generate_base64() << '\n';
    return Exit::ok;
}

Exit run_lock(const CommandLine& cl, std::ostream&, std::ostream& err) {
    const std::string& name = cl.args.at(0);
    const std::vector<std::string> cmd(cl.args.begin() + 1, cl.args.end());
    const auto ttl = cl.value("--ttl");
    const auto wait = cl.value("--wait");
    const RedisEndpoint e = endpoint(cl);
    DistributedLock lock(e, name, millis(Seconds(ttl ? parse_seconds("--ttl", *ttl) : 30.0)));
    std::atomic<bool> lost{false};
    try {
        const bool acquired = wait ? lock.acquire(millis(Seconds(parse_seconds("--wait", *wait))))
                                   : lock.try_acquire();
        if (!acquired) {
            err << "yuxi-configctl: lock '" << name << "' is held by somebody else"
                << (wait ? " (waited " + *wait + " s)" : std::string()) << "; '" << cmd[0]
                << "' was not run (--wait S waits for it)\n";
            return Exit::lock_busy;
        }
        // The callback runs on the renewal thread: flag, tell (write(2): the streams belong
        // to the main thread), and stop the child.
        lock.start_renewal([&lost, name](LossReason reason) {
            lost = true;
            const std::string text = "yuxi-configctl: warning: lost lock '" + name + "' (" +
                                     to_string(reason) + "); sending SIGTERM to the command\n";
            (void)!::write(STDERR_FILENO, text.data(), text.size());
            forward_signal(SIGTERM);
        });
    } catch (const LockError& x) {
        throw unreachable(e, x, "; the command was not run");
    }
    if (lost) {
        return Exit::lock_lost;
    }
    forward_signals();
    const auto [pid, error] = spawn(cmd, name, lock.fencing_token());
    if (pid < 0) {
        err << "yuxi-configctl: cannot run '" << cmd[0] << "': " << std::strerror(error) << '\n';
        return static_cast<Exit>(error == ENOENT ? 127 : 126);
    }
    g_child = pid;
    if (lost) {
        forward_signal(SIGTERM);  // lost between the renewal's start and the spawn
    }
    const int status = wait_child(pid);
    g_child = 0;
    try {
        (void)lock.release();
    } catch (const LockError& x) {
        err << "yuxi-configctl: warning: could not release lock '" << name << "': " << x.what()
            << " (it frees after its TTL)\n";
    }
    if (lost) {
        err << "yuxi-configctl: the lock was lost while '" << cmd[0] << "' ran; it exited with "
            << status << '\n';
        return Exit::lock_lost;
    }
    return static_cast<Exit>(status);
}

}  // namespace yuxi::config::cli
